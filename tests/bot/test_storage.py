"""The database: migrations on a fresh file, hashed users, cache reservation, votes."""

from __future__ import annotations

import sqlite3

from bot.migrations import MIGRATIONS
from bot.storage import Database
from model.generator import Request, Result
from model.sampling import Sampling


def result(text: str, tags: dict | None = None, seed: int = 1) -> Result:
    request = Request("review", tags or {"genre": "Rock", "score": 5.0}, sampling=Sampling(seed=seed))
    return Result(request, text, True, 1, "end", 10, 0.1, "m1")


async def test_migrations_on_a_fresh_file_and_again(tmp_path):
    path = tmp_path / "fresh.sqlite3"
    db = Database(path)
    await db.open()
    assert await db.versions() == [m[0] for m in MIGRATIONS]
    await db.close()
    again = Database(path)
    await again.open()
    assert await again.migrate() == []  # nothing re-applied
    await again.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"generations", "deliveries", "ratings", "demand", "schema_migrations", "meta"} <= tables


async def test_users_are_stored_hashed(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    await db.open()
    gid = await db.add(result("A fine record."), "review|Rock|5.0", "warm")
    taken = await db.take(
        "m1",
        "review|Rock|5.0",
        channel_id=7,
        guild_id=1,
        user_hash=db.user_hash(424242),
        requested={"genre": "Rock", "score": 5.2},
    )
    assert taken is not None and taken[0].id == gid
    await db.delivered(taken[1], message_id=99)
    await db.vote(99, db.user_hash(424242), 1)
    await db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("db.sqlite3*"))
    assert raw and b"424242" not in raw


async def test_take_prefers_least_shown_and_skips_seen(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    await db.open()
    a = await db.add(result("first", seed=1), "k", "warm")
    b = await db.add(result("second", seed=2), "k", "warm")
    user = db.user_hash(1)
    got = [
        (await db.take("m1", "k", channel_id=5, guild_id=None, user_hash=user, requested={}))[0].id
        for _ in range(2)
    ]
    assert got == [a, b]
    assert await db.take("m1", "k", channel_id=5, guild_id=None, user_hash=user, requested={}) is None
    other = await db.take("m1", "k", channel_id=6, guild_id=None, user_hash=user, requested={})
    assert other is not None
    assert await db.depth("m1") == {}  # everything has been shown somewhere
    await db.close()
