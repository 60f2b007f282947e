"""The store on both engines: migrations, hashed users, cache reservation and votes also from two
processes at once; the SQLite file's faults."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess

import pytest

from linernotes.bot.engines import is_postgres
from linernotes.bot.migrations import MIGRATIONS
from linernotes.bot.storage import Database, StorageError, take_lock
from linernotes.model.config import Sampling
from linernotes.model.generator import Request, Result


def result(text: str, tags: dict | None = None, seed: int = 1) -> Result:
    request = Request("review", tags or {"genre": "Rock", "score": 5.0}, sampling=Sampling(seed=seed))
    return Result(request, text, True, 1, "end", 10, 0.1, "m1")


@pytest.fixture
async def database():
    """``database(path)`` opens a Database that is closed after the test even when it fails (an open
    connection's thread would keep the test process from exiting)."""
    made: list[Database] = []

    async def open_at(path) -> Database:
        db = Database(path)
        made.append(db)
        await db.open()
        return db

    yield open_at
    for db in made:
        await db.close()


async def test_migrations_on_a_fresh_store_and_again(store, database):
    db = await database(store)
    assert await db.versions() == [m[0] for m in MIGRATIONS]
    await db.close()
    again = await database(store)
    assert await again.migrate() == []  # nothing re-applied
    assert {"generations", "deliveries", "ratings", "demand", "schema_migrations", "meta", "leases"} <= (
        await again.engine.tables()
    )
    await again.close()
    if not is_postgres(store):
        con = sqlite3.connect(store)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        con.close()


async def test_processes_starting_together_migrate_once(store, database):
    stores = await asyncio.gather(*(database(store) for _ in range(3)))
    assert [await s.versions() for s in stores] == [[m[0] for m in MIGRATIONS]] * 3
    assert len({s.user_hash(1) for s in stores}) == 1  # one salt: a user is one voter to every process


async def everything_stored(db: Database) -> str:
    """Every value in every table, as text."""
    rows = [await db.fetch(f"SELECT * FROM {table}") for table in sorted(await db.engine.tables())]
    return repr([[tuple(r) for r in table] for table in rows])


async def test_users_are_stored_hashed(store, database, tmp_path):
    db = await database(store)
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
    await db.record_reaction(99, db.user_hash(424242), 1, present=True)
    assert await db.votes(gid) == (1, 0)
    assert "424242" not in await everything_stored(db)
    await db.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("bot.sqlite3*"))
    assert b"424242" not in raw


async def test_take_prefers_least_shown_and_skips_seen(store, database):
    db = await database(store)
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


async def test_racing_processes_never_show_a_channel_one_text_twice(store, database):
    """Two processes (two connections, on PostgreSQL a pool each) take at once for the same channels."""
    first, second = await database(store), await database(store)
    for i in range(12):
        await first.add(result(f"text {i}", seed=i), "k", "warm")

    async def take(db: Database, channel: int) -> int | None:
        got = await db.take("m1", "k", channel_id=channel, guild_id=1, user_hash="h", requested={})
        return got[0].id if got else None

    calls = [take(db, channel) for _ in range(8) for db in (first, second) for channel in (1, 2)]
    taken = await asyncio.gather(*calls)
    by_channel = {1: [t for t, c in zip(taken, [1, 2] * 16, strict=True) if c == 1 and t]}
    by_channel[2] = [t for t, c in zip(taken, [1, 2] * 16, strict=True) if c == 2 and t]
    for ids in by_channel.values():
        assert len(ids) == len(set(ids)) and len(ids) >= 8  # never twice; the cache had 12 for 16 asks
    rows = await first.fetch("SELECT generation_id, channel_id, COUNT(*) FROM deliveries GROUP BY 1, 2")
    assert all(r[2] == 1 for r in rows)


async def test_a_burst_of_takes_shares_transactions_and_keeps_the_least_shown_order(
    store, database, monkeypatch
):
    """Takes of one key asked together in one process (on PostgreSQL in one transaction under the key's
    lock), each seeing the ones before: never twice to a channel, no text shown a third time before all twice."""
    db = await database(store)
    for i in range(12):
        await db.add(result(f"text {i}", seed=i), "k", "warm")
    opened = 0
    serialized = db.engine.serialized

    def counted(*keys):
        nonlocal opened
        opened += 1
        return serialized(*keys)

    monkeypatch.setattr(db.engine, "serialized", counted)
    channels = [c for _ in range(10) for c in (1, 2, 3)]
    taken = await asyncio.gather(
        *(db.take("m1", "k", channel_id=c, guild_id=1, user_hash="h", requested={}) for c in channels)
    )
    assert all(t is not None for t in taken)
    for channel in (1, 2, 3):
        ids = [t[0].id for t, c in zip(taken, channels, strict=True) if c == channel]
        assert len(set(ids)) == 10
    shown = [r[0] for r in await db.fetch("SELECT shown FROM generations")]
    assert sum(shown) == 30 and max(shown) - min(shown) <= 1
    # PostgreSQL: all 30 queued before the batch's transaction began; SQLite: each take its own statement,
    # atomic on its own with one writer at a time
    assert opened == (1 if is_postgres(store) else 30)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # SQLite's takes are not batched
async def test_a_batched_take_whose_request_went_away_is_given_back(store, database):
    """A request cancelled while its batch waits for the key's lock (another process holds it) leaves no
    delivery behind: its batch gives the take back."""
    first, second = await database(store), await database(store)
    gid = await first.add(result("Wanted, then not."), "k", "warm")
    async with second.engine.transaction() as tx:
        await tx.lock(take_lock("m1", "k"))
        asking = asyncio.create_task(
            first.take("m1", "k", channel_id=1, guild_id=1, user_hash="h", requested={})
        )
        await asyncio.sleep(0.3)  # the take's batch is now waiting for the lock
        asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking
    for _ in range(100):  # the batch finishes after the lock is released, then gives the take back
        if not first._takes._draining:
            break
        await asyncio.sleep(0.05)
    assert (await first.fetch("SELECT COUNT(*) FROM deliveries"))[0][0] == 0
    again = await first.take("m1", "k", channel_id=1, guild_id=1, user_hash="h", requested={})
    assert again is not None and again[0].id == gid


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_a_transaction_cancelled_while_another_process_writes_leaves_the_store_usable(store, database):
    """A task cancelled while its BEGIN waits for another process's write lock: the BEGIN goes on in
    aiosqlite's thread, and the transaction it begins is rolled back before anyone else uses the connection."""
    first, second = await database(store), await database(store)
    gid = await first.add(result("Sent, then recorded."), "k", "warm")
    taken = await first.take("m1", "k", channel_id=1, guild_id=1, user_hash="h", requested={})
    assert taken is not None
    async with second.engine.transaction():  # another process writing
        waiting = asyncio.create_task(first.delivered(taken[1], message_id=5))  # a transaction
        await asyncio.sleep(0.3)
        waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # Before the fix this failed with "cannot start a transaction within a transaction".
    await first.delivered(taken[1], message_id=6)
    assert await first.generation_for_message(6) == gid


async def test_votes_from_two_processes_are_one_vote(store, database):
    first, second = await database(store), await database(store)
    gid = await first.add(result("Rated from everywhere."), "k", "warm")
    taken = await first.take("m1", "k", channel_id=3, guild_id=1, user_hash="h", requested={})
    assert taken is not None
    await first.delivered(taken[1], message_id=500)
    voter = first.user_hash(77)
    assert voter == second.user_hash(77)
    # The same reaction event handled twice (e.g. a resumed gateway session replaying it) and a switch
    # of mind, from both processes at once: one vote, the newest reaction's.
    await asyncio.gather(
        *(db.record_reaction(500, voter, 1, present=True) for db in (first, second, first, second))
    )
    assert await first.votes(gid) == (1, 0)
    await second.record_reaction(500, voter, -1, present=True)
    await first.record_reaction(500, voter, 1, present=False)
    assert await second.votes(gid) == (0, 1)
    assert not first.unsaved and not second.unsaved


@pytest.fixture
def read_only(tmp_path):
    """A database file this process cannot write (immutable for root, who ignores file modes)."""
    path = tmp_path / "ro.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.close()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a file read-only for root here (chattr +i failed)")
        yield path
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        yield path


async def test_read_only_database_is_refused_at_open(read_only):
    db = Database(read_only)
    with pytest.raises(StorageError, match=r"ro\.sqlite3: cannot write to it"):
        await db.open()
    assert db.engine._db is None  # closed again: no thread left running


async def test_not_a_database_is_refused_at_open(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some notes, not a database\n" * 40)
    with pytest.raises(StorageError, match=r"notes\.txt: not a SQLite database"):
        await Database(path).open()


async def test_deleted_file_is_written_back(tmp_path, caplog, database):
    path = tmp_path / "db.sqlite3"
    db = await database(path)
    first = await db.add(result("Before the accident."), "k", "warm")
    os.remove(path)  # an operator's slip while the bot runs
    second = await db.add(result("After it.", seed=2), "k", "warm")
    await db.close()
    assert "was deleted while the bot was running" in caplog.text
    again = await database(path)
    assert [(await again.get(i)).text for i in (first, second)] == ["Before the accident.", "After it."]


async def test_replaced_file_is_followed(tmp_path, caplog, database):
    path, other = tmp_path / "db.sqlite3", tmp_path / "restored.sqlite3"
    db, restored = await database(path), await database(other)
    await restored.add(result("From the backup."), "k", "warm")
    await restored.close()
    await db.add(result("Only in the old file."), "k", "warm")
    os.replace(other, path)  # e.g. a backup restored in place
    assert (await db.get(1)).text == "From the backup."
    await db.add(result("Into the restored file.", seed=2), "k", "warm")
    await db.close()
    assert "was replaced while the bot was running" in caplog.text
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT text FROM generations ORDER BY id")] == [
        "From the backup.",
        "Into the restored file.",
    ]
    con.close()


async def test_generations_stored_before_ranking_read_as_one_draft(tmp_path, database):
    path = tmp_path / "v5.sqlite3"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)")
    for version, _, sql in MIGRATIONS[:5]:
        con.executescript(
            f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({version}, 'v{version}', 0);\nCOMMIT;"
        )
    con.execute(
        "INSERT INTO generations (kind, cache_key, tags, text, model_id, sampling, seed, origin, created) "
        "VALUES ('review', 'review|Rock|5.0', '{}', 'Stored by an older bot.', 'm1', '{}', 1, 'warm', 0)"
    )
    con.commit()
    con.close()
    db = await database(path)
    assert (await db.get(1)).ranked == 1
    ranked = result("Chosen of four.")
    ranked.ranked = 4
    assert (await db.get(await db.add(ranked, "review|Rock|5.0", "warm"))).ranked == 4


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://bot:hunter2@127.0.0.1:1/x", "bot:\\*\\*\\*@127.0.0.1:1/x: cannot connect"),
        ("postgresql://bot:hunter2@[db/x", "a URL that cannot be read"),
    ],
)
async def test_a_store_that_cannot_be_reached_is_refused_without_its_password(url, said):
    with pytest.raises(StorageError, match=said) as e:
        await Database(url).open()
    assert "hunter2" not in str(e.value)
