"""Helpers for bot tests: reading SimCord's record of what the bot did, filling the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from linernotes.bot.cache import key_for
from linernotes.bot.embeds import generation_id
from linernotes.model.config import Sampling
from linernotes.model.generator import Request


def callbacks(env) -> list[dict]:
    """The JSON of every interaction callback (the first response) the bot sent, oldest first."""
    return [q.json for q in env.http_requests if q.path.endswith("/callback")]


def footer_id(message) -> int:
    """The generation number in an answer's footer."""
    return generation_id(message.embeds[0])


async def fill(env, kind: str, tags: dict, n: int) -> None:
    """Put ``n`` generations for one key into the cache through the real worker."""
    bot = env.bot
    key = key_for(kind, bot.requests.card.check_request(kind, tags), bot.config.score_bucket)
    results = await bot.worker.submit(
        [Request(kind, key.tags, sampling=Sampling(seed=100 + i)) for i in range(n)]
    )
    for result in results:
        await bot.db.add(result, key.key, "warm")


async def burst(env, calls: list[tuple], timeout: float = 60) -> list:
    """Many people pressing enter at once: emit every ``(member, channel, command, options)``
    interaction before the bot handles any, then wait for all of them; returns their results in order.

    SimCord settles after each actor call (one at a time); this skips those per-call settles
    (private API, see the SimCord notes) and settles once at the end.
    """
    settle = env._settle_internal

    async def later(**_: object) -> None:
        return None

    env._settle_internal = later
    try:
        results = [await member.slash(channel, name, **options) for member, channel, name, options in calls]
    finally:
        env._settle_internal = settle
    await env.settle(timeout=timeout)
    return results


@asynccontextmanager
async def store_down(db, request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The bot's store refuses writes for a while: a SQLite file turned read-only, or the PostgreSQL
    server stopped (and started again after, on the same port and data)."""
    if db.shared:
        server = request.getfixturevalue("postgres")
        server.stop()
        try:
            yield
        finally:
            server.start()
        return
    await db.engine.db.execute_fetchall("PRAGMA query_only = ON")  # as a read-only disk would
    try:
        yield
    finally:
        await db.engine.db.execute_fetchall("PRAGMA query_only = OFF")
