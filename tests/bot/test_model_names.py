"""Model names are compared by one normal form everywhere (NFKC, Cyrillic/Greek look-alikes folded to
Latin, casefold): /model train refuses a name the server has in another guise, and 'default' in any;
lookups find the one model a name means; the database keeps the form unique, and names stored before it
are given theirs (a collision renamed, the older model keeping its name)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import simcord

from linernotes.bot.migrations import MIGRATIONS
from linernotes.bot.models import check_name
from linernotes.bot.names import name_key
from linernotes.bot.registry import ModelError, ModelRegistry
from linernotes.bot.storage import Database
from tests.bot.test_server_models import bot_settings, manager, models_of, upload  # noqa: F401

pytestmark = pytest.mark.simcord(settle_timeout=60)
CYRILLIC_E, CYRILLIC_A, GREEK_O = "\u0435", "\u0410", "\u03bf"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Harbor", "harbor"),
        ("Harbor", f"H{CYRILLIC_A.lower()}rbor"),
        ("HARBOR", f"H{CYRILLIC_A}RBOR"),
        ("Harbor", "Ｈａｒｂｏｒ"),  # fullwidth
        ("default", f"d{CYRILLIC_E}fault"),
        ("default", "ＤＥＦＡＵＬＴ"),
        ("Nova", f"Nov{'α'}"),
        ("Nova", f"N{GREEK_O}va"),
        ("Two Words", "two  words"),
        ("fish", "\ufb01sh"),  # the ligature
    ],
)
def test_names_that_look_alike_have_one_form(a, b):
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(
    ("a", "b"), [("Harbor", "Harbor2"), ("Harb0r", "Harbor"), ("l1", "ll"), ("a-b", "a b")]
)
def test_names_that_differ_stay_apart(a, b):
    assert name_key(a) != name_key(b)


@pytest.mark.parametrize("name", [f"d{CYRILLIC_E}fault", "ＤＥＦＡＵＬＴ", "DEFAULT", " default "])
def test_default_is_refused_in_any_guise(name):
    with pytest.raises(ModelError, match="'default' means the bot's own model"):
        check_name(name)


def test_names_are_stored_in_nfkc():
    assert check_name(" Ｈａｒｂｏｒ ") == "Harbor" and check_name("cafe\u0301") == "café"


async def test_a_name_the_server_has_in_another_guise_is_refused(simcord_env, server, tmp_path):
    guild, channel, *_ = server
    dana = manager(simcord_env, guild)
    registry = ModelRegistry(simcord_env.bot.db)
    base = simcord_env.bot.requests.card.model_id
    await registry.add(guild.id, "Harbor", base, str(tmp_path / "h"), "h.txt", {"kept": 3}, adapter_id="a1")
    for name in ("harbor", f"H{CYRILLIC_A}RBOR", "Ｈａｒｂｏｒ"):
        r = await dana.slash(channel, "model train", name=name, file=upload())
        assert "This server already has a model named 'Harbor'" in r.response.content, name
    for name in (f"d{CYRILLIC_E}fault", "ＤＥＦＡＵＬＴ"):
        r = await dana.slash(channel, "model train", name=name, file=upload())
        assert "'default' means the bot's own model" in r.response.content, name
    simcord.assert_error(simcord_env, ModelError)
    assert [m.name for m in await models_of(simcord_env, guild)] == ["Harbor"]
    assert not (tmp_path / "models").exists()  # nothing was downloaded
    gone = await dana.slash(channel, "model delete", name=f"h{CYRILLIC_A.lower()}rbor")
    assert gone.response.content.startswith("Deleted **Harbor**")
    assert await models_of(simcord_env, guild) == []


def legacy_database(path: Path, rows: list[tuple[int, str]], active: dict[int, int]) -> None:
    """A database as the bot left it before migration 5: names unique only as typed."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)")
    for version, _, sql in MIGRATIONS[:4]:
        con.executescript(
            f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({version}, 'v{version}', 0);\nCOMMIT;"
        )
    for guild, name in rows:
        con.execute(
            "INSERT INTO server_models (guild_id, name, status, base_model_id, path, upload, report, created,"
            " updated) VALUES (?, ?, 'ready', 'base', '/nowhere', 'x.txt', '{}', 0, 0)",
            (guild, name),
        )
    con.executemany("INSERT INTO server_settings VALUES (?, ?)", active.items())
    con.commit()
    con.close()


def test_names_stored_before_are_given_their_form_and_collisions_renamed(tmp_path, caplog):
    path = tmp_path / "old.sqlite3"
    rows = [
        (1, "Harbor"),
        (1, "harbor"),
        (1, f"d{CYRILLIC_E}fault"),
        (1, "Other"),
        (2, "harbor"),
        (1, "HARBOR"),
    ]
    legacy_database(path, rows, {1: 2, 2: 5})

    async def check() -> None:
        db = Database(path)
        await db.open()
        try:
            registry = ModelRegistry(db)
            assert (await registry.named(1, "harbor")).id == 1  # the older model keeps its name
            names = [(m.guild_id, m.name) for m in await registry.with_status("ready")]
            assert names == [
                (1, "Harbor"), (1, "harbor-2"), (1, f"d{CYRILLIC_E}fault-2"), (1, "Other"), (2, "harbor"), (1, "HARBOR-3")
            ]  # fmt: skip
            assert (await registry.named(1, "HARBOR-2")).id == 2
            assert await registry.actives() == {1: 2, 2: 5}  # each server's choice survives the migration
            with pytest.raises(ModelError, match="already has a model named 'Other'"):
                await registry.add(1, f"{GREEK_O.upper()}THER", "base", "/p", "y.txt", {})
            await registry.set_status(1, "sampling")  # the states a job now passes through are stored
        finally:
            await db.close()

    asyncio.run(check())
    assert "'harbor' is renamed 'harbor-2'" in caplog.text
    con = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError):  # the database itself keeps the form unique
            con.execute(
                "INSERT INTO server_models (guild_id, name, name_key, status, base_model_id, path, upload, "
                "report, created, updated) VALUES (1, 'x', 'harbor', 'queued', 'b', '/p', 'u', '{}', 0, 0)"
            )
    finally:
        con.close()
