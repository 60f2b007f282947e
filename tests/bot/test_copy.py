"""``linernotes db copy``: a running bot's store into the other engine and back, row for row, and the copy
serving on; the refusals (a target holding rows, a missing source, what the target cannot hold); the
command end to end."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from pathlib import Path

import pytest

from linernotes.bot.copy import OWN_META, SKIPPED, TABLES, CopyError, copy_store, store_of
from linernotes.bot.registry import ModelRegistry
from linernotes.bot.storage import Database, StorageError
from linernotes.bot.web.privacy import set_published
from linernotes.bot.web.store import WebStore
from linernotes.cli.main import main
from linernotes.common.errors import InputError
from linernotes.model.config import Sampling
from linernotes.model.generator import Request, Result
from tests.bot.helpers import fill
from tests.conftest import ENGINES

CHORUS = "lyrics|chorus|"  # the cache key of /lyrics part:chorus
SECRET = "s3cret-pw"


@pytest.fixture
def bot_settings(bot_settings):
    """A warm-up of two generations: enough to leave a warm run and its cost behind."""
    return {**bot_settings, "warm_limit": 2}


def other_store(request: pytest.FixtureRequest, tmp_path: Path, engine: str, name: str) -> str:
    """A new, empty store of ``engine``: a SQLite file called ``name``, or a new schema."""
    if engine == "sqlite":
        return str(tmp_path / f"{name}.sqlite3")
    return request.getfixturevalue("postgres").new_schema(f"c_{uuid.uuid4().hex[:12]}")


async def rows_of(target: str) -> dict[str, list[tuple]]:
    """Every copied table's rows as the store holds them (columns by name, rows sorted), read without
    opening it as the bot does (which writes to it)."""
    db = Database(target)
    await db.engine.open()
    try:
        out = {}
        for table in TABLES:
            columns = sorted(await db.engine.columns(table.name))
            rows = await db.fetch(f"SELECT {', '.join(columns)} FROM {table.name}")
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
        return out
    finally:
        await db.engine.close()


def but_opened(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """``rows_of``'s rows without when the store was last opened (every opening writes it again)."""
    return {**rows, "meta": [r for r in rows["meta"] if r[0] != "opened"]}


def holds_nothing(rows: dict[str, list[tuple]]) -> bool:
    """Whether a store holds no rows but the meta its opening wrote (``rows_of``'s form)."""
    meta = {r[0] for r in rows.pop("meta")}  # columns by name: key, value
    return meta <= set(OWN_META) and not any(rows.values())


def result(text: str, seed: int = 1) -> Result:
    request = Request("review", {"genre": "Rock", "score": 5.0}, sampling=Sampling(seed=seed))
    return Result(request, text, True, 1, "end", 10, 0.1, "m1")


async def small_store(target: str | Path) -> None:
    """A store with a few rows, written by the store's own methods."""
    db = Database(target)
    await db.open()
    try:
        first = await db.add(result("One."), "review|Rock|5.0", "warm")
        await db.add(result("Two.", seed=2), "review|Rock|5.0", "warm")
        delivery = await db.reserve(first, 10, 20, db.user_hash(1), {"score": 5.0})
        await db.delivered(delivery, 500)
        await db.record_reaction(500, db.user_hash(1), 1, True)
        await db.note_demand("review|Rock|5.0")
    finally:
        await db.close()


# --- a running bot's store ---------------------------------------------------------------------------


async def populate(env, server, tmp_path: Path) -> None:
    """A row in every table the copy moves, each written by the bot's or the site's own code."""
    guild, channel, alice, bob = server
    bot = env.bot
    model = bot.card.model_id
    await fill(env, "lyrics", {"part": "chorus"}, 3)
    hit = await alice.slash(channel, "lyrics", part="chorus")
    await bob.slash(channel, "lyrics", part="chorus", seed="a first line of my own")  # private
    await alice.slash(channel, "review", genre="Metal", score=7.5)  # a miss: written for her
    await alice.react(hit.response, "👍")
    await bob.react(hit.response, "👎")
    await bob.react(hit.response, "👍")  # his vote changes; both reactions stay
    web = WebStore(bot.db)
    assert await web.take(model, [CHORUS], 2, {"part": "chorus"})  # shown on the site
    web.count(CHORUS)
    await web.flush_counts(force=True)
    assert await bot.warm_now() >= 1
    registry = ModelRegistry(bot.db)
    mine = await registry.add(guild.id, "Mine", model, str(tmp_path / "mine"), "songs.txt", {"kept": 3})
    await registry.set_active(guild.id, mine.id)
    await set_published(bot.db, guild.id, True)


async def check_the_copy_serves_on(target: str, env, server) -> None:
    """The copy opened as a bot opens it: the same voters' hashes, and takes, additions and votes that
    carry on after the copied ids."""
    guild, _, alice, bob = server
    db = Database(target)
    await db.open()
    try:
        voter = db.user_hash(bob.id)
        assert voter == env.bot.db.user_hash(bob.id) and db.user_hash(alice.id) == env.bot.db.user_hash(
            alice.id
        )
        assert (await db.fetch("SELECT COUNT(*) FROM ratings WHERE user_hash = ?", (voter,)))[0][0] == 1
        top = {t: (await db.fetch(f"SELECT MAX({k}) FROM {t}"))[0][0] for t, k in IDS}
        shown = {r[0]: r[1] for r in await db.fetch("SELECT id, shown FROM generations")}
        gen, delivery = await db.take(env.bot.card.model_id, CHORUS, 4242, guild.id, voter, {})
        assert delivery > top["deliveries"]
        assert (await db.fetch("SELECT shown FROM generations WHERE id = ?", (gen.id,)))[0][0] == shown[
            gen.id
        ] + 1
        await db.delivered(delivery, 777_000)
        up, down = await db.votes(gen.id)
        await db.record_reaction(777_000, db.user_hash(999), -1, True)  # a new voter
        assert await db.votes(gen.id) == (up, down + 1)
        assert (await db.fetch("SELECT MAX(seq) FROM reactions"))[0][0] > top["reactions"]
        assert await db.add(result("New."), CHORUS, "warm") > top["generations"]
        theirs = await ModelRegistry(db).add(guild.id, "Theirs", "m1", "/x", "songs.txt", {})
        assert theirs.id > top["server_models"]
    finally:
        await db.close()


IDS = [("generations", "id"), ("deliveries", "id"), ("reactions", "seq"), ("server_models", "id")]


@pytest.mark.simcord(settle_timeout=60)
@pytest.mark.parametrize("bot_store", ENGINES, indirect=True)
async def test_a_running_bots_store_copies_row_for_row_and_back(simcord_env, server, request, tmp_path):
    await populate(simcord_env, server, tmp_path)
    source = simcord_env.bot.config.database
    other = "sqlite" if simcord_env.bot.db.shared else "postgresql"
    target = other_store(request, tmp_path, other, "copy")
    copied = await copy_store(source, target)  # the bot still runs: the copy reads one snapshot
    expected = await rows_of(source)
    assert all(expected.values()), [name for name, rows in expected.items() if not rows]
    assert copied.rows == {name: len(rows) for name, rows in expected.items()}
    assert await rows_of(target) == expected  # every column, floats exact, every id, the salt
    generations, deliveries = await shown_and_deliveries(target)
    assert generations == deliveries > 3  # ``shown`` counted each delivery once, not twice
    back = other_store(request, tmp_path, "postgresql" if other == "sqlite" else "sqlite", "back")
    await copy_store(target, back)
    assert but_opened(await rows_of(back)) == but_opened(expected)  # the copy was opened to be copied
    await check_the_copy_serves_on(target, simcord_env, server)


async def shown_and_deliveries(target: str) -> tuple[int, int]:
    """The sum of ``generations.shown`` and the number of deliveries in a store."""
    db = Database(target)
    await db.engine.open()
    try:
        shown = (await db.fetch("SELECT SUM(shown) FROM generations"))[0][0]
        return int(shown), (await db.fetch("SELECT COUNT(*) FROM deliveries"))[0][0]
    finally:
        await db.engine.close()


# --- what the copy checks and refuses ---------------------------------------------------------------


async def test_the_copy_knows_every_table_a_store_has(store):
    db = Database(store)
    await db.open()
    try:
        assert await db.engine.tables() == {t.name for t in TABLES} | SKIPPED
    finally:
        await db.close()


async def test_a_snapshot_sees_the_store_as_it_was_while_another_process_writes(store):
    reader, writer = Database(store), Database(store)
    await reader.open()
    await writer.open()
    try:
        await writer.add(result("One."), "review|Rock|5.0", "warm")
        async with reader.engine.snapshot() as tx:
            assert (await tx.fetch("SELECT COUNT(*) FROM generations"))[0][0] == 1
            await asyncio.wait_for(writer.add(result("Two."), "review|Rock|5.0", "warm"), 5)  # not held up
            assert (await tx.fetch("SELECT COUNT(*) FROM generations"))[0][0] == 1
        assert (await reader.fetch("SELECT COUNT(*) FROM generations"))[0][0] == 2
    finally:
        await reader.close()
        await writer.close()


def test_store_values():
    assert store_of("sqlite:bot.sqlite3", "--from") == "bot.sqlite3"
    assert store_of("/var/lib/bot.sqlite3", "--from") == "/var/lib/bot.sqlite3"
    assert store_of("postgres://u@h/db", "--to") == "postgres://u@h/db"
    with pytest.raises(InputError, match=r"^--to: unknown scheme 'mysql'") as e:
        store_of(f"mysql://u:{SECRET}@h/db", "--to")
    assert SECRET not in str(e.value)
    with pytest.raises(InputError, match=r"^--from sqlite: names no file"):
        store_of("sqlite:", "--from")


async def test_a_target_holding_rows_is_refused_and_left_as_it_was(tmp_path, postgres):
    source = tmp_path / "bot.sqlite3"
    await small_store(source)
    schema = f"c_{uuid.uuid4().hex[:12]}"
    target = postgres.new_schema(schema).replace("postgres@", f"postgres:{SECRET}@")  # trust: ignored
    await small_store(target)
    before = await rows_of(target)
    with pytest.raises(InputError) as e:
        await copy_store(f"sqlite:{source}", target)
    message = str(e.value)
    assert message.startswith("--to postgresql://postgres:***@") and SECRET not in message
    assert "the target already holds rows (generations: 2, deliveries: 1, ratings: 1, reactions: 1" in message
    assert message.endswith("copy only into an empty store")
    assert but_opened(await rows_of(target)) == but_opened(before)  # its salt too


async def test_a_missing_source_is_refused_before_anything_is_made(tmp_path, postgres):
    target = tmp_path / "copy.sqlite3"
    with pytest.raises(InputError, match=r"^--from .*missing\.sqlite3: no such database"):
        await copy_store(f"sqlite:{tmp_path / 'missing.sqlite3'}", str(target))
    assert not target.exists() and not (tmp_path / "missing.sqlite3").exists()
    empty = postgres.new_schema(f"c_{uuid.uuid4().hex[:12]}")
    with pytest.raises(InputError, match=r"^--from postgresql://.*: no such database"):
        await copy_store(empty, str(target))
    with pytest.raises(InputError, match="the same store as --from"):
        await copy_store(str(tmp_path / "missing.sqlite3"), f"sqlite:{tmp_path}/./missing.sqlite3")


async def test_an_unreachable_target_is_named_without_its_password(tmp_path, postgres):
    source = tmp_path / "bot.sqlite3"
    await small_store(source)
    postgres_port = f":{postgres.port}/"
    target = postgres.url().replace("postgres@", f"postgres:{SECRET}@").replace(postgres_port, ":1/")
    with pytest.raises(StorageError) as e:
        await copy_store(str(source), target)
    assert "postgres:***@127.0.0.1:1/" in str(e.value) and SECRET not in str(e.value)


CHANGES = {
    "a column the target lacks": (
        "ALTER TABLE generations ADD COLUMN mood TEXT",
        r"table generations has no column mood that the source has",
    ),
    "a newer version": (
        "INSERT INTO schema_migrations VALUES (99, 'from the future', 0)",
        r"migrated to version 99 by a newer linernotes",
    ),
    "a table it does not know": (
        "CREATE TABLE playlists (id INTEGER)",
        r"tables this copy does not know: playlists",
    ),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
async def test_a_source_the_target_cannot_hold_is_refused(change, tmp_path):
    source = tmp_path / "bot.sqlite3"
    await small_store(source)
    sql, refusal = CHANGES[change]
    with sqlite3.connect(source) as con:
        con.execute(sql)
    with pytest.raises(InputError, match=refusal):
        await copy_store(str(source), str(tmp_path / "copy.sqlite3"))
    assert holds_nothing(await rows_of(str(tmp_path / "copy.sqlite3")))


async def test_a_column_only_the_target_has_keeps_its_default(tmp_path, postgres):
    source = tmp_path / "bot.sqlite3"
    await small_store(source)
    target = postgres.new_schema(f"c_{uuid.uuid4().hex[:12]}")
    db = Database(target)
    await db.open()  # as a newer linernotes would have migrated it
    await db.execute("ALTER TABLE generations ADD COLUMN mood TEXT NOT NULL DEFAULT 'calm'")
    await db.close()
    assert (await copy_store(str(source), target)).rows["generations"] == 2
    db = Database(target)
    await db.engine.open()
    assert [r[0] for r in await db.fetch("SELECT mood FROM generations")] == ["calm", "calm"]
    await db.engine.close()


async def test_a_copy_that_comes_out_different_is_rolled_back(tmp_path, postgres, monkeypatch):
    source = tmp_path / "bot.sqlite3"
    await small_store(source)
    target = postgres.new_schema(f"c_{uuid.uuid4().hex[:12]}")

    async def keep_the_triggers_count(write) -> None:
        """As if nothing undid what the deliveries' triggers added to ``shown``."""

    monkeypatch.setattr("linernotes.bot.copy._undo_showings", keep_the_triggers_count)
    with pytest.raises(
        CopyError, match=r"generations came out different \(SUM\(shown\) 1 -> 2; MAX\(shown\) 1 -> 2\)"
    ):
        await copy_store(str(source), target)
    assert holds_nothing(await rows_of(target))
    monkeypatch.undo()
    assert (await copy_store(str(source), target)).rows["generations"] == 2  # it was left empty


# --- the command --------------------------------------------------------------------------------------


def test_the_command_copies_prints_the_counts_and_refuses_in_one_line(tmp_path, postgres, capsys):
    source = tmp_path / "bot.sqlite3"
    asyncio.run(small_store(source))
    target = postgres.new_schema(f"c_{uuid.uuid4().hex[:12]}").replace("postgres@", f"postgres:{SECRET}@")
    argv = ["db", "copy", "--from", f"sqlite:{source}", "--to", target]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^generations +2$", out, re.M) and re.search(r"^deliveries +1$", out, re.M)
    assert re.search(
        r"^copied \d+ rows in \d+\.\d s from sqlite:.* to postgresql://postgres:\*\*\*@", out, re.M
    )
    assert main(argv) == 2
    done = capsys.readouterr()
    assert done.err.startswith("linernotes db: error: --to postgresql://postgres:***@")
    assert done.err.count("\n") == 1 and "copy only into an empty store" in done.err
    assert SECRET not in done.out + done.err + out
