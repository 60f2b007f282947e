"""The JSON API: the least-shown cached generation of a key (counted as a showing), and permalinks (not
counted). Nothing here generates: a key with nothing cached answers 404 with the keys that exist."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from linernotes.bot.cache import parse_key
from linernotes.bot.web.context import CONTEXT, Context, Takes
from linernotes.bot.web.errors import NotFound
from linernotes.bot.web.params import PARAMS, parse_query
from linernotes.bot.web.privacy import is_public_id
from linernotes.bot.web.store import Public

LISTED = 200  # keys listed in a 404 at most
NO_STORE = {"Cache-Control": "no-store"}  # each answer is a showing: no cache may replay it


async def take(request: web.Request) -> web.Response:
    """``GET /api/<kind>?tag=value...``: the least-shown public generation of the key; a showing."""
    ctx = request.app[CONTEXT]
    kind = request.match_info["kind"]
    if kind not in PARAMS:
        raise NotFound(f"no such API: /api/{kind[:40]}; kinds are {', '.join(PARAMS)}", kinds=list(PARAMS))
    model_id, card = await ctx.model()
    query = parse_query(kind, request.query, ctx.config.score_bucket, card)
    ctx.store.count(query.label)
    keys = await ctx.store.public_keys(model_id) if model_id else {}
    matching = tuple(sorted(k for k in keys if query.matches(k)))
    row = await ctx.batcher.take(Takes(model_id, matching, query), None) if model_id and matching else None
    await ctx.store.flush_counts()
    if row is None:
        knows = (
            f" (the model served knows: {', '.join(card.kinds)})" if card and kind not in card.tags else ""
        )
        raise NotFound(f"nothing cached for {query.label}{knows}", keys=_listing(kind, keys))
    gen = (await ctx.store.records([row]))[row]
    return web.json_response(gen.to_json(ctx.base_url(request)), headers=NO_STORE)


def _listing(kind: str, keys: dict[str, int]) -> list[dict[str, Any]]:
    """The keys of ``kind`` that have public generations: their tags, how many, and the call for each."""
    found = []
    for key, count in sorted(keys.items()):
        try:
            parsed = parse_key(key)
        except (ValueError, IndexError):
            continue
        if parsed.kind != kind:
            continue
        params = {k: f"{v:.1f}" if isinstance(v, float) else str(v) for k, v in parsed.tags.items()}
        found.append({"tags": parsed.tags, "generations": count, "call": f"/api/{kind}?{urlencode(params)}"})
    return found[:LISTED]


async def generation(request: web.Request) -> web.Response:
    """``GET /api/g/<id>``: a public generation with its votes; not a showing."""
    ctx = request.app[CONTEXT]
    gen = await find(ctx, request.match_info["id"])
    body = gen.to_json(ctx.base_url(request)) | {"votes": {"up": gen.up, "down": gen.down}}
    return web.json_response(body, headers={"Cache-Control": "public, max-age=5"})


async def find(ctx: Context, public_id: str) -> Public:
    """The public generation with this id; one answer for an id that is malformed, unknown or private."""
    gen = await ctx.store.permalink(public_id) if is_public_id(public_id) else None
    if gen is None:
        raise NotFound(f"no public generation has the id {public_id[:40]!r}")
    return gen


def routes(app: web.Application) -> None:
    """Add the API's routes. A take is never a HEAD: asking what it would answer would count a showing."""
    app.router.add_get("/api/g/{id}", generation)
    app.router.add_get("/api/{kind}", take, allow_head=False)
