"""``/model``: a server uploads lyrics, an adapter trains in a child process, and that server's /lyrics
is written by it; nothing crosses between servers; cancel, delete and restarts leave nothing behind."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import discord
import pytest
import simcord

from linernotes.bot import create_bot
from linernotes.bot.feedback import export_feedback
from linernotes.bot.registry import ModelError, ModelRegistry
from linernotes.bot.storage import Database
from linernotes.bot.uploads import UploadError
from tests.bot.helpers import footer_id
from tests.bot.test_storage import result
from tests.conftest import REPO

pytestmark = pytest.mark.simcord(settle_timeout=240)
HARBOR = REPO / "data" / "upload_sample" / "harbor_lights.txt"
DUSTY = REPO / "data" / "sample" / "lyrics" / "Dusty_Harlan.json"  # Genius JSON, with choruses


@pytest.fixture
def bot_settings(bot_settings, tmp_path):
    return {**bot_settings, "adapter_steps": 4, "models_dir": str(tmp_path / "models"), "train_cooldown": 0}


def manager(env, guild, name: str = "dana"):
    """A member who may manage the server (sees and may use /model)."""
    role = guild.create_role(f"{name}-managers", permissions=discord.Permissions(manage_guild=True))
    return guild.add_member(env.create_user(name), roles=[role])


def upload(path: Path = HARBOR, name: str | None = None) -> tuple[str, bytes]:
    """An attachment option value: (file name, bytes)."""
    return (name or path.name, path.read_bytes())


async def models_of(env, guild) -> list:
    """The server's models as the database has them."""
    return await ModelRegistry(env.bot.db).of_server(guild.id)


async def emit(env, member, channel, command: str, **options):
    """Send a command without waiting for the bot's background work (training) to finish."""
    settle = env._settle_internal

    async def later(**_: object) -> None:
        return None

    env._settle_internal = later
    try:
        return await member.slash(channel, command, **options)
    finally:
        env._settle_internal = settle


async def never_read() -> bytes:
    raise AssertionError("a refused upload must not be downloaded")


async def never_told(text: str) -> None:
    raise AssertionError(f"nothing to tell: {text}")


async def until_training(env, guild, timeout: float = 60) -> None:
    """Wait (in real time) until the server's job is running in its child process."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = await models_of(env, guild)
        if found and found[0].status == "training":
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the training job never started")


async def test_upload_train_use_and_delete(simcord_env, server):
    guild, channel, alice, _ = server
    dana = manager(simcord_env, guild)
    other = simcord_env.create_guild("Elsewhere")
    elsewhere = other.create_text_channel("general")
    eve = other.add_member(simcord_env.create_user("eve"))

    r = await dana.slash(channel, "model train", name="Harbor", file=upload())
    text = r.response.content
    assert "📥 **Harbor** from `harbor_lights.txt`: kept 24 sections, dropped none." in text
    assert "✅ **Harbor** is ready" in text and "validation loss" in text
    (model,) = await models_of(simcord_env, guild)
    assert model.status == "ready" and model.model_id
    adapter = Path(model.path) / "checkpoint"
    assert (adapter / "card.json").is_file() and (Path(model.path) / "upload" / "harbor_lights.txt").is_file()

    mine = await alice.slash(channel, "lyrics", part="chorus")
    theirs = await eve.slash(elsewhere, "lyrics", part="chorus")
    db = simcord_env.bot.db
    assert (await db.get(footer_id(mine.response))).model_id == model.model_id
    assert (await db.get(footer_id(theirs.response))).model_id == simcord_env.bot.requests.card.model_id

    listed = await dana.slash(channel, "model list")
    assert (
        listed.ephemeral and "**Harbor** — ✅ ready, 24 sections, validation loss" in listed.response.content
    )
    assert f"id `{model.model_id}`" in listed.response.content
    assert "← in use" in listed.response.content

    # The warm-up fills the server's model's keys too (an equal share of the run's limit each).
    simcord_env.bot.config.warm_limit = 4
    assert await simcord_env.bot.warm_now() == 4
    depth = await db.depth(model.model_id)
    base = simcord_env.bot.requests.card.model_id
    assert sum(depth.values()) == 2 and sum((await db.depth(base)).values()) == 2
    key = next(iter(depth))
    hit = await alice.slash(channel, "lyrics", part=key.split("|")[1])
    assert (await db.get(footer_id(hit.response))).model_id == model.model_id
    assert sum((await db.depth(model.model_id)).values()) == 1  # served from the cache

    # Its ratings export on their own, as that server's retraining data.
    await alice.react(mine.response, "👍")
    await eve.react(theirs.response, "👍")
    out = Path(simcord_env.bot.config.database).parent / "feedback"
    assert (await export_feedback(simcord_env.bot.config.database, out, model.model_id))["rated"] == 1
    assert model.model_id in (out / "rated.jsonl").read_text()

    gone = await dana.slash(channel, "model delete", name="harbor")
    assert gone.response.content.startswith("Deleted **Harbor**: its upload, its adapter and the 3 texts")
    assert await models_of(simcord_env, guild) == [] and not Path(model.path).exists()
    assert await db.get(footer_id(mine.response)) is None  # its texts went with it, ratings too
    assert await db.depth(model.model_id) == {}
    assert (await export_feedback(simcord_env.bot.config.database, out, model.model_id))["rated"] == 0
    again = await alice.slash(channel, "lyrics", part="chorus")
    assert (await db.get(footer_id(again.response))).model_id == simcord_env.bot.requests.card.model_id


async def test_two_servers_never_get_each_others_text(simcord_env, server, tmp_path, bot_settings):
    guild, channel, alice, _ = server
    other = simcord_env.create_guild("Elsewhere")
    elsewhere = other.create_text_channel("general")
    eve = other.add_member(simcord_env.create_user("eve"))
    await manager(simcord_env, guild).slash(channel, "model train", name="harbor", file=upload())
    await manager(simcord_env, other, "fred").slash(
        elsewhere, "model train", name="dusty", file=upload(DUSTY)
    )
    (a,) = await models_of(simcord_env, guild)
    (b,) = await models_of(simcord_env, other)
    assert a.status == b.status == "ready" and a.model_id != b.model_id

    # Server A's chorus is in the cache, unseen in B's channel; B asks for the same key twice and must
    # get its own model's text each time.
    bot = simcord_env.bot
    first = await alice.slash(channel, "lyrics", part="chorus")
    for _ in range(2):
        r = await eve.slash(elsewhere, "lyrics", part="chorus")
        assert (await bot.db.get(footer_id(r.response))).model_id == b.model_id
    assert (await bot.db.get(footer_id(first.response))).model_id == a.model_id

    # After a restart each server still gets its own model.
    await bot.close()
    new = create_bot(bot.config.checkpoint, tmp_path / "bot.sqlite3", **bot_settings)
    try:
        await simcord_env.restart_bot(new)
        for member, where, model in ((alice, channel, a), (eve, elsewhere, b)):
            r = await member.slash(where, "lyrics", part="verse")
            assert (await new.db.get(footer_id(r.response))).model_id == model.model_id
    finally:
        await new.close()


async def test_only_managers_may_train(simcord_env, server):
    guild, channel, alice, _ = server
    assert "model train" not in alice.available_commands(channel)
    # A server that lets everyone see /model still cannot let non-managers use it.
    tree_commands = await simcord_env.bot.tree.fetch_commands()
    model = next(c for c in tree_commands if c.name == "model")
    guild.set_command_permissions(model, {alice: True})
    r = await alice.slash(channel, "model train", name="x", file=upload())
    assert r.ephemeral and r.response.content == "Only server managers can use this command."
    simcord.assert_error(simcord_env)
    assert await models_of(simcord_env, guild) == []


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (("notes.pdf", b"%PDF-1.4"), "`notes.pdf`: not a lyrics file this bot reads"),
        (("big.txt", b"[Chorus]\nla la la\n" * 200_000), "3.6 MB is over this bot's upload limit of 100 kB"),
        (("latin1.txt", "[Chorus]\ncaf\xe9 au lait\n".encode("latin-1")), "not UTF-8 text (byte 12"),
        (("plain.txt", b"just one line"), "`plain.txt`: nothing in it is usable"),
    ],
)
async def test_bad_uploads_are_refused_and_nothing_is_kept(simcord_env, server, file, expected, tmp_path):
    guild, channel, *_ = server
    simcord_env.bot.config.upload_limit = 100_000
    r = await manager(simcord_env, guild).slash(channel, "model train", name="bad", file=file)
    assert expected in r.response.content
    if file[0] != "plain.txt":  # the bot's refusals are errors it answered; the child's is a message
        simcord.assert_error(simcord_env, UploadError)
    assert await models_of(simcord_env, guild) == []
    assert not list((tmp_path / "models").rglob("*.*"))  # no upload, prepared data or run left behind
    assert not (tmp_path / "models" / str(guild.id)).exists()  # nor the server's emptied folder


async def test_cancel_stops_the_child_and_deletes_the_upload(simcord_env, server):
    guild, channel, *_ = server
    simcord_env.bot.config.adapter_steps = 10_000
    dana = manager(simcord_env, guild)
    await emit(simcord_env, dana, channel, "model train", name="harbor", file=upload())
    await until_training(simcord_env, guild)
    (model,) = await models_of(simcord_env, guild)
    # A second upload from the server is refused before anything is downloaded. (Asked of the service
    # directly: a command would settle, and settling waits for the training to end.)
    with pytest.raises(ModelError, match="'harbor' is still training; wait for it or /model cancel"):
        await simcord_env.bot.models.submit(guild.id, "other", "x.txt", 10, never_read, never_told)
    r = await dana.slash(channel, "model cancel")
    assert r.response.content == "Cancelled training **harbor**; its upload was deleted."
    assert await models_of(simcord_env, guild) == [] and not Path(model.path).exists()
    assert simcord_env.bot.models.route(guild.id, "lyrics").adapter is None


async def test_a_restart_mid_training_fails_the_job_cleanly(simcord_env, server, tmp_path, bot_settings):
    guild, channel, alice, _ = server
    simcord_env.bot.config.adapter_steps = 10_000
    dana = manager(simcord_env, guild)
    await emit(simcord_env, dana, channel, "model train", name="harbor", file=upload())
    await until_training(simcord_env, guild)
    (model,) = await models_of(simcord_env, guild)
    old = simcord_env.bot
    await old.close()  # a shutdown: the child is stopped with it
    new = create_bot(old.config.checkpoint, tmp_path / "bot.sqlite3", **bot_settings)
    try:
        await simcord_env.restart_bot(new)
        listed = await dana.slash(channel, "model list")
        assert "**harbor** — ❌ failed, 24 sections: stopped: the bot restarted" in listed.response.content
        assert not Path(model.path).exists()
        r = await alice.slash(channel, "lyrics", part="chorus")
        assert (await new.db.get(footer_id(r.response))).model_id == new.requests.card.model_id
    finally:
        await new.close()


@pytest.fixture
async def crashed(tmp_path) -> Path:
    """A database left by a bot killed mid-training: a 'training' row and its half-written folder."""
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    folder = tmp_path / "models" / "1" / "abc"
    (folder / "run").mkdir(parents=True)
    registry = ModelRegistry(db)
    model = await registry.add(1, "ghost", "some-model", str(folder), "ghost.txt", {"kept": 3})
    await registry.set_status(model.id, "training")
    await db.close()
    return folder


async def test_a_job_killed_with_the_bot_is_failed_at_start_up(crashed, simcord_env):
    (model,) = await ModelRegistry(simcord_env.bot.db).of_server(1)
    assert model.status == "failed" and "restarted" in (model.error or "")
    assert not crashed.exists() and not crashed.parent.exists()  # the server's folder held only that one


async def test_deleting_a_model_under_the_bots_own_id_keeps_the_bots_texts(simcord_env, server, tmp_path):
    guild, channel, alice, _ = server
    bot = simcord_env.bot
    base = bot.requests.card.model_id
    mine = await alice.slash(channel, "lyrics", part="chorus")  # written by the bot's own model
    # A row `models add` registered before adapter ids were checked: its adapter carries the base's id.
    folder = tmp_path / "models" / str(guild.id) / "legacy"
    (folder / "checkpoint").mkdir(parents=True)
    await ModelRegistry(bot.db).add(guild.id, "Legacy", base, str(folder), "l.txt", {}, adapter_id=base)
    r = await manager(simcord_env, guild).slash(channel, "model delete", name="legacy")
    assert r.response.content.startswith("Deleted **Legacy**: its upload, its adapter and the 0 texts")
    assert await models_of(simcord_env, guild) == [] and not folder.exists()
    assert (await bot.db.get(footer_id(mine.response))).model_id == base  # the bot's text stays


async def test_a_model_forgets_only_the_texts_it_wrote(tmp_path):
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    try:
        registry = ModelRegistry(db)
        before = await db.add(result("Written by m1, a model served before.", seed=1), "k", "request")
        # Registered (before ids were checked) under "m1", which had written texts already.
        reused = await registry.add(1, "Reused", "base", "/x", "r.txt", {}, adapter_id="m1")
        shared = await registry.add(1, "Twin", "base", "/y", "t.txt", {}, adapter_id="a2")
        # Another server's copy of one adapter (as `models add` let in before ids were checked).
        twin = await registry.add(2, "Twin", "base", "/z", "t.txt", {}, adapter_id="a2")
        own = await registry.add(1, "Own", "base", "/w", "o.txt", {}, adapter_id="a3")
        texts = [
            await db.add(dataclasses.replace(result(f"By {m}."), model_id=m), "k", "warm")
            for m in ("a2", "a3")
        ]
        assert await registry.forget(reused) == 0 and await db.get(before) is not None
        assert await registry.forget(shared) == 0 and await db.get(texts[0]) is not None
        assert await registry.forget(own, keep=("base",)) == 1 and await db.get(texts[1]) is None
        assert await registry.forget(twin, keep=("a2",)) == 0 and await db.get(texts[0]) is not None
        assert await registry.of_server(1) == await registry.of_server(2) == []
    finally:
        await db.close()


async def test_a_failed_model_gives_way_to_its_name_with_its_texts(tmp_path):
    db = Database(tmp_path / "bot.sqlite3")
    await db.open()
    try:
        registry = ModelRegistry(db)
        old = await registry.add(1, "Harbor", "base", "/x", "h.txt", {}, adapter_id="a1")
        text = await db.add(dataclasses.replace(result("By a1."), model_id="a1"), "k", "warm")
        await registry.fail(old.id, "its adapter files are broken")
        new = await registry.add(1, "harbor", "base", "/y", "h.txt", {})  # a new upload under that name
        assert [m.id for m in await registry.of_server(1)] == [new.id]
        assert await db.get(text) is None  # nothing of the failed model is left behind
    finally:
        await db.close()
