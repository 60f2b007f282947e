"""Server models with two bot processes on one store: the process a server talks to does not train
(``trainer = false``) and queues its upload; the trainer (another process, in its own simulated Discord)
claims it, trains it and registers it; the first process then serves it. A delete or a /reload made in
one process reaches the other at its next look at the store (``sync_now``, every ``sync_interval``)."""

from __future__ import annotations

import asyncio
import contextvars
import shutil
import threading
import time

import pytest
import simcord

from linernotes.bot import create_bot
from linernotes.bot.leases import Lease
from linernotes.bot.registry import ModelError, ModelRegistry
from tests.bot.helpers import footer_id
from tests.bot.test_server_models import manager, upload
from tests.conftest import ENGINES

pytestmark = [
    pytest.mark.simcord(settle_timeout=240),
    pytest.mark.parametrize("bot_store", ENGINES, indirect=True),
]


@pytest.fixture
def bot_settings(bot_settings, tmp_path):
    """The process members talk to: it queues uploads for the trainer."""
    shared = {"adapter_steps": 4, "models_dir": str(tmp_path / "models"), "train_cooldown": 0}
    return {**bot_settings, **shared, "trainer": False}


class Elsewhere:
    """A bot running in another thread, on its own event loop and in its own simulated Discord, as in
    another process: ``await elsewhere.call(f)`` runs ``f()`` there."""

    def __init__(self, bot) -> None:
        self.bot = bot
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: contextvars.Context().run(asyncio.run, self._main()))

    async def _main(self) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        async with simcord.run(self.bot, settle_timeout=240, check_errors=False):
            self.ready.set()
            await self.stop.wait()
        await self.bot.close()

    async def call(self, f):
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(f(), self.loop))


@pytest.fixture
def trainer(bot_store, bot_settings, bot_checkpoint):
    """The trainer: a second bot on the same store and models directory."""
    elsewhere = Elsewhere(create_bot(bot_checkpoint, bot_store, **{**bot_settings, "trainer": True}))
    elsewhere.thread.start()
    assert elsewhere.ready.wait(120), "the trainer did not start"
    yield elsewhere
    assert elsewhere.loop is not None and elsewhere.stop is not None
    elsewhere.loop.call_soon_threadsafe(elsewhere.stop.set)
    elsewhere.thread.join(60)


async def until_status(db, guild_id: int, status: str, timeout: float = 120) -> None:
    """Wait (in real time) until the server's model reaches ``status``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = await ModelRegistry(db).of_server(guild_id)
        if found and found[0].status == status:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the model never became {status}: {found}")


async def test_the_trainer_trains_what_another_process_queued(simcord_env, server, trainer):
    guild, channel, alice, _ = server
    dana = manager(simcord_env, guild)
    here = simcord_env.bot
    r = await dana.slash(channel, "model train", name="Harbor", file=upload())
    assert "queued for the bot's trainer behind 0 job(s)" in r.response.content
    (queued,) = await ModelRegistry(here.db).of_server(guild.id)
    assert queued.status == "queued" and queued.holder is None and queued.channel_id == channel.id
    await here.sync_now()  # a process that does not train never claims
    assert (await ModelRegistry(here.db).by_id(queued.id)).holder is None

    await trainer.call(trainer.bot.sync_now)  # claims it and trains it in its child process
    await until_status(here.db, guild.id, "ready")
    (model,) = await ModelRegistry(here.db).of_server(guild.id)
    assert model.holder == trainer.bot.models.holder and model.model_id
    await here.sync_now()  # attaches what was trained elsewhere, and the server's choice
    mine = await alice.slash(channel, "lyrics", part="chorus")
    assert (await here.db.get(footer_id(mine.response))).model_id == model.model_id
    listed = await dana.slash(channel, "model list")
    assert "**Harbor** — ✅ ready" in listed.response.content and "← in use" in listed.response.content

    # Deleted where the server talks: the trainer lets go of it too at its next look.
    assert trainer.bot.models.route(guild.id, "lyrics").adapter == model.adapter_name
    await dana.slash(channel, "model delete", name="harbor")
    await trainer.call(trainer.bot.sync_now)
    assert trainer.bot.models.route(guild.id, "lyrics").adapter is None
    assert model.adapter_name not in dict(trainer.bot.models.in_use())


async def test_a_trainer_fails_the_jobs_of_a_trainer_that_died_and_no_others(simcord_env, server, trainer):
    guild, channel, _, _ = server
    here = simcord_env.bot
    await manager(simcord_env, guild).slash(channel, "model train", name="Harbor", file=upload())
    registry = ModelRegistry(here.db)
    (queued,) = await registry.of_server(guild.id)
    # Another trainer holds the job and is alive (its lease is renewed).
    other = Lease(here.db, "process:other", holder="other")
    assert await other.take()
    await registry.set_status(queued.id, "training")
    await here.db.execute("UPDATE server_models SET holder = 'other' WHERE id = ?", (queued.id,))
    await trainer.call(trainer.bot.sync_now)
    assert (await registry.by_id(queued.id)).status == "training"
    # It dies: it stops renewing, and its lease runs out.
    await here.db.execute("UPDATE leases SET expires = 0 WHERE name = 'process:other'")
    await trainer.call(trainer.bot.sync_now)
    failed = await registry.by_id(queued.id)
    assert failed.status == "failed" and "restarted" in (failed.error or "")
    await here.sync_now()  # the process the server talks to follows, and takes new uploads again
    assert (
        "failed" in (await manager(simcord_env, guild, "erin").slash(channel, "model list")).response.content
    )


async def test_a_reload_in_one_process_reaches_the_other(
    simcord_env, trainer, tiny_checkpoint, tmp_path, bot_checkpoint
):
    here = simcord_env.bot
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoint, root / "int8")  # a checkpoint every process sees
    for bot in (here, trainer.bot):
        bot.config.checkpoints_dir = str(root)
    before = trainer.bot.card.model_id
    card = await here.admin.reload(None, "int8")
    assert card.model_id != before
    await trainer.call(trainer.bot.sync_now)
    assert trainer.bot.card.model_id == card.model_id
    await trainer.call(trainer.bot.sync_now)  # once: a second look finds nothing new
    assert trainer.bot.config.checkpoint == str((root / "int8").resolve())


async def test_the_training_queue_is_the_stores_not_one_processes(simcord_env, server):
    guild, channel, _, _ = server
    simcord_env.bot.config.training_queue = 1  # one training, one waiting, across every process
    registry = ModelRegistry(simcord_env.bot.db)
    await registry.add(501, "theirs", "base", "/elsewhere", "x.txt", {})  # queued by another process
    dana = manager(simcord_env, guild)
    r = await dana.slash(channel, "model train", name="Harbor", file=upload())
    assert "queued for the bot's trainer behind 1 job(s)" in r.response.content
    await registry.add(502, "more", "base", "/elsewhere", "y.txt", {})
    third = simcord_env.create_guild("Third")
    erin = manager(simcord_env, third, "erin")
    r = await erin.slash(third.create_text_channel("general"), "model train", name="Late", file=upload())
    assert "training other servers' models" in r.response.content
    simcord.assert_error(simcord_env, ModelError)
