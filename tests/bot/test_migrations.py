"""The migrations on a fresh store of each engine (the same tables and columns on both), and migration 7
(the website's tables) on a SQLite file at version 6 holding rows."""

from __future__ import annotations

import re
import sqlite3

import pytest

from linernotes.bot.migrations import MIGRATIONS
from linernotes.bot.storage import Database
from linernotes.model.config import Sampling
from linernotes.model.generator import Request, Result

WEB_TABLES = {"published_servers", "request_counts", "generation_costs"}


def at_version(path, version: int) -> sqlite3.Connection:
    """A database file with the migrations up to ``version`` applied, as an older bot left it."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)")
    for number, _, sql in MIGRATIONS[:version]:
        con.executescript(
            f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({number}, 'v{number}', 0);\nCOMMIT;"
        )
    return con


async def test_a_fresh_database_has_the_web_tables_and_new_rows_get_public_ids(store):
    db = Database(store)
    await db.open()
    try:
        assert (await db.versions())[-1] == MIGRATIONS[-1][0]
        assert await db.engine.tables() >= WEB_TABLES
        request = Request("review", {"genre": "Rock", "score": 5.0}, sampling=Sampling(seed=1))
        ids = [
            await db.add(Result(request, f"text {i}", True, 1, "end", 5, 0.1, "m1"), "k", "warm")
            for i in range(50)
        ]
        public = [(await db.get(i)).public_id for i in ids]
        assert len(set(public)) == 50 and all(re.fullmatch(r"[0-9a-f]{24}", p) for p in public)
        assert len({p[:6] for p in public}) > 45  # random, not a counter
    finally:
        await db.close()


async def test_version_6_with_rows_is_migrated_to_7(tmp_path):
    path = tmp_path / "v6.sqlite3"
    con = at_version(path, 6)
    for i in range(20):
        con.execute(
            "INSERT INTO generations (kind, cache_key, tags, text, model_id, sampling, seed, origin, created) "
            "VALUES ('review', 'review|Rock|5.0', '{}', ?, 'm1', '{}', 1, 'warm', 0)",
            (f"Stored by an older bot, {i}.",),
        )
    con.execute(
        "INSERT INTO deliveries (generation_id, message_id, channel_id, guild_id, user_hash, requested, delivered) "
        "VALUES (1, 500, 7, 1, 'h', '{}', 0)"
    )
    con.execute("INSERT INTO server_settings (guild_id, active_model) VALUES (1, NULL)")
    con.commit()
    con.close()
    db = Database(path)
    await db.open()
    try:
        assert await db.versions() == [m[0] for m in MIGRATIONS]
        rows = await db.fetch("SELECT public_id FROM generations ORDER BY id")
        assert len({r[0] for r in rows}) == 20 and all(re.fullmatch(r"[0-9a-f]{24}", r[0]) for r in rows)
        assert [tuple(r) for r in await db.fetch("SELECT via, message_id FROM deliveries")] == [
            ("discord", 500)
        ]
        assert (await db.fetch("SELECT COUNT(*) FROM published_servers"))[0][0] == 0  # nobody opted in
        assert (await db.get(1)).text == "Stored by an older bot, 0." and (await db.get(1)).public_id == rows[
            0
        ][0]
        taken = await db.take("m1", "review|Rock|5.0", 7, 1, db.user_hash(1), {})
        assert taken is not None and taken[0].id == 2  # #1 was shown in channel 7: the bot's rule still holds
    finally:
        await db.close()
    with sqlite3.connect(path) as con, pytest.raises(sqlite3.IntegrityError):
        con.execute("UPDATE deliveries SET via = 'carrier pigeon'")  # only the two ways a showing happens


async def columns(db: Database) -> dict[str, set[str]]:
    """Table -> its column names."""
    return {table: set(await db.engine.columns(table)) for table in await db.engine.tables()}


async def test_both_engines_build_the_same_tables(tmp_path, postgres):
    stores = [Database(tmp_path / "fresh.sqlite3"), Database(postgres.new_schema("parity"))]
    for db in stores:
        await db.open()
    try:
        sqlite, pg = [await columns(db) for db in stores]
        assert sqlite == pg and "leases" in sqlite
        # The triggers that count showings work on both: a delivery is a showing, its removal is not.
        for db in stores:
            request = Request("review", {"genre": "Rock", "score": 5.0}, sampling=Sampling(seed=1))
            gid = await db.add(Result(request, "t", True, 1, "end", 5, 0.1, "m1"), "k", "warm")
            taken = await db.take("m1", "k", 7, 1, "h", {})
            assert taken is not None and (await db.fetch("SELECT shown FROM generations"))[0][0] == 1
            await db.undeliver(taken[1])
            assert (await db.fetch("SELECT shown FROM generations WHERE id = ?", (gid,)))[0][0] == 0
    finally:
        for db in stores:
            await db.close()
