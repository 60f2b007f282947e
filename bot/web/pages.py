"""The site's pages: browse by kind and tag (top-rated and newest), a generation's permalink, the
operator view, and the stylesheet. All rendered here, on the server; none needs JavaScript."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDict

from linernotes.bot.cache import bucket, parse_key
from linernotes.bot.web import render
from linernotes.bot.web.api import find
from linernotes.bot.web.context import CONTEXT
from linernotes.bot.web.errors import BadRequest
from linernotes.bot.web.params import PARAMS, Query, parse_query
from linernotes.bot.web.plots import draw_async
from linernotes.bot.web.stats import GENERATION, TRAINING, Figures, figures

LISTED = 20  # generations per list


def html(text: str, status: int = 200, cache: str = "no-cache") -> web.Response:
    """An HTML answer."""
    return web.Response(text=text, status=status, content_type="text/html", headers={"Cache-Control": cache})


async def index(request: web.Request) -> web.Response:
    """``GET /?kind=K&tag=value...``: pick a kind and tag values; the top-rated and the newest."""
    ctx = request.app[CONTEXT]
    keys = await ctx.store.public_keys(None)
    kinds = [kind for kind in PARAMS if any(k.startswith(f"{kind}|") for k in keys)]  # those with texts
    if len(request.query.getall("kind", [])) > 1:
        raise BadRequest("parameter 'kind' is given more than once; give it once")
    params = MultiDict((k, v) for k, v in request.query.items() if k != "kind")
    kind = request.query.get("kind", "")
    if not kind:
        if params:
            raise BadRequest(f"choose a kind (kind={'|'.join(PARAMS)}) before {', '.join(list(params)[:5])}")
        chosen, heading, form = None, "What the bot wrote", ""
    else:
        if kind not in PARAMS:
            raise BadRequest(f"unknown kind {kind[:40]!r}; kinds are {', '.join(PARAMS)}")
        query = parse_query(kind, params, ctx.config.score_bucket)
        chosen = sorted(k for k in keys if query.matches(k))
        heading = render.KIND_NAMES[kind] + "".join(f" · {v}" for v in query.as_params().values())
        form = render.picker(kind, _choices(kind, keys), query.as_params())
    top = await ctx.store.top_rated(chosen, LISTED)
    newest = await ctx.store.newest(chosen, LISTED)
    return html(render.index_page(heading, form, top, newest, kinds))


def _choices(kind: str, keys: dict[str, int]) -> dict[str, list[str]]:
    """Each tag of ``kind`` -> the values public generations have, for the picker."""
    values: dict[str, set] = {name: set() for name in PARAMS[kind]}
    for key in keys:
        try:
            parsed = parse_key(key)
        except (ValueError, IndexError):
            continue
        if parsed.kind == kind:
            for name, value in parsed.tags.items():
                values.setdefault(name, set()).add(value)
    return {
        name: [f"{v:.1f}" if isinstance(v, float) else str(v) for v in sorted(found, key=_order)]
        for name, found in values.items()
        if found
    }


def _order(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) else (1, 0, str(value).casefold())


async def generation(request: web.Request) -> web.Response:
    """``GET /g/<id>``: a generation's permalink page; not a showing."""
    ctx = request.app[CONTEXT]
    gen = await find(ctx, request.match_info["id"])
    url = f"{ctx.base_url(request)}/g/{gen.id}"
    kinds = list(PARAMS)
    tags = {name: gen.tags[name] for name in PARAMS.get(gen.kind, ()) if name in gen.tags}
    if "score" in tags:
        tags["score"] = bucket(float(tags["score"]), ctx.config.score_bucket)
    more = "/?" + urlencode({"kind": gen.kind, **Query(gen.kind, tuple(tags.items())).as_params()})
    return html(render.generation_page(gen, url, kinds, more), cache="public, max-age=5")


async def stats(request: web.Request) -> web.Response:
    """``GET /stats``: the operator view (the token from the environment; Basic or Bearer)."""
    ctx = request.app[CONTEXT]
    ctx.check_operator(request)
    model_id, card = await ctx.model()
    found = await figures(ctx.db, model_id, card)
    plots = await draw_async(found)
    return html(_stats_page(found, plots, model_id), cache="no-store")


async def stats_json(request: web.Request) -> web.Response:
    """``GET /api/stats``: the operator's figures as JSON (same token)."""
    ctx = request.app[CONTEXT]
    ctx.check_operator(request)
    model_id, card = await ctx.model()
    found = await figures(ctx.db, model_id, card)
    body = {
        "model_id": model_id,
        "requests": [
            dict(zip(("hour", "source", "key", "requests"), r, strict=True)) for r in found.requests
        ],
        "depth": found.depth,
        "approval": [
            dict(zip(("kind", "tag", "value", "up", "down"), a, strict=True)) for a in found.approval
        ],
        "costs": found.costs,
        "showings": found.showings,
    }
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _stats_page(found: Figures, plots: dict[str, str | None], model_id: str | None) -> str:
    """The operator view's page."""
    parts = [f"<h1>Operator view</h1><p class='meta'>Serving {render.e(model_id or 'no model yet')}.</p>"]
    shown = ", ".join(f"{n} {via}" for via, n in sorted(found.showings.items())) or "none yet"
    parts.append(f"<p>Showings: {render.e(shown)}.</p><h2>Requests per key, last 7 days</h2>")
    parts.append(_plot(plots["requests"], "requests per hour for the most asked keys"))
    parts.append(render.table(["key", "Discord", "web"], [list(t) for t in found.key_totals()[:50]]))
    parts.append("<h2>Cache depth per key</h2>" + _plot(plots["depth"], "generations never shown, per key"))
    parts.append(render.table(["key", "never shown"], sorted(map(list, found.depth.items()))))
    parts.append("<h2>Approval per tag value</h2>" + _plot(plots["approval"], "approval per tag value"))
    rows = [[k, t, v, u, d, f"{u / (u + d):.0%}" if u + d else "–"] for k, t, v, u, d in found.approval]
    parts.append(render.table(["kind", "tag", "value", "up", "down", "approval"], rows))
    parts.append("<h2>Cost per model</h2>" + _costs(found.costs))
    return render.document("Operator view · linernotes", "".join(parts))


def _plot(svg: str | None, alt: str) -> str:
    return render.image(svg, alt) if svg else "<p class='meta'>Nothing to draw yet.</p>"


def _costs(costs: dict[str, dict[str, Any]]) -> str:
    """Training (from cards and server models' records) and generation (recorded by the bot) per model."""
    heads = ["model", "is", *(f"train {n}" for n in TRAINING), *(f"generate {n}" for n in GENERATION)]
    rows = []
    for model_id, c in sorted(costs.items()):
        train, gen = c.get("training") or {}, c.get("generation") or {}
        rows.append(
            [
                model_id,
                c.get("role", ""),
                *(_num(train.get(n)) for n in TRAINING),
                *(_num(gen.get(n)) for n in GENERATION),
            ]
        )
    return render.table(heads, rows)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return (
        f"{value:,.1f}"
        if isinstance(value, float)
        else f"{value:,}"
        if isinstance(value, int)
        else str(value)
    )


async def stylesheet(request: web.Request) -> web.Response:
    """``GET /site.css``."""
    return web.Response(
        text=render.CSS, content_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


def routes(app: web.Application) -> None:
    """Add the pages' routes."""
    app.router.add_get("/", index)
    app.router.add_get("/g/{id}", generation)
    app.router.add_get("/stats", stats)
    app.router.add_get("/api/stats", stats_json)
    app.router.add_get("/site.css", stylesheet)
