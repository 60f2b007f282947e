"""A server model's states: one table of transitions, one place they change, and every way a job can end
(failed, cancelled, deleted, in any state, even before its upload is in) lets its adapter go, leaves no
file and is never lost; uploads arriving together are counted together; a server waits between uploads.

The bot side is tested end to end through SimCord; the training child is the fast stand-in
``fake_adapter.py`` (the real one is tested in test_server_models.py and test_server_adapter.py).
"""

from __future__ import annotations

import asyncio
import random
import string
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest
import simcord

from linernotes.bot.config import BotConfig
from linernotes.bot.model_states import STATES, allowed
from linernotes.bot.models import ServerModels, Tracked
from linernotes.bot.registry import ModelError, ServerModel
from linernotes.bot.trainer import TrainingProcess
from linernotes.bot.uploads import UploadError
from tests.bot.helpers import footer_id
from tests.bot.test_models_cli import adapter  # noqa: F401  (a real adapter, trained once)
from tests.bot.test_server_models import bot_settings, emit, manager, models_of, upload  # noqa: F401
from tests.bot.test_worker import Stuck, serve_stuck

pytestmark = pytest.mark.simcord(settle_timeout=60)
FAKE = Path(__file__).with_name("fake_adapter.py")
LATIN1 = ("latin1.txt", "[Chorus]\ncaf\xe9 au lait\n".encode("latin-1"))  # refused once read

# --- the table ---------------------------------------------------------------------------------------

# Every allowed move, written out: anything not here must be refused.
ALLOWED = {
    ("queued", "preparing"), ("queued", "failed"), ("queued", "cancelled"), ("queued", "deleted"),
    ("preparing", "training"), ("preparing", "failed"), ("preparing", "cancelled"), ("preparing", "deleted"),
    ("training", "sampling"), ("training", "failed"), ("training", "cancelled"), ("training", "deleted"),
    ("sampling", "ready"), ("sampling", "failed"), ("sampling", "cancelled"), ("sampling", "deleted"),
    ("ready", "failed"), ("ready", "deleted"),
    ("failed", "deleted"),
}  # fmt: skip


@pytest.mark.parametrize("to", STATES)
@pytest.mark.parametrize("state", STATES)
def test_the_transition_table(state, to):
    assert allowed(state, to) == ((state, to) in ALLOWED)


def service(tmp_path: Path) -> ServerModels:
    """The service over a stand-in worker (only its card is read): enough to move states."""
    worker = SimpleNamespace(card=SimpleNamespace(model_id="base", tags={}))
    return ServerModels(BotConfig(checkpoint="x", models_dir=str(tmp_path)), None, worker)  # type: ignore[arg-type]


def tracked(state: str, guild_id: int = 1) -> Tracked:
    row = ServerModel(7, guild_id, "Harbor", state, "base", "a1", "/x", "h.txt", {}, None, 0.0, 0.0)
    return Tracked(guild_id, "Harbor", "h.txt", state=state, model=row)


@pytest.mark.parametrize(
    ("path", "moved", "served"),
    [
        # Each step: the state asked for, whether the move happened, whether the server is then served
        # by the adapter (the card is in the generator from sampling on).
        (["preparing", "training", "sampling", "ready"], [True] * 4, [False, False, False, True]),
        (["preparing", "training", "sampling", "cancelled", "ready"], [True] * 4 + [False], [False] * 5),
        (["preparing", "training", "sampling", "ready", "deleted", "ready"], [True] * 5 + [False], [False, False, False, True, False, False]),
        (["preparing", "training", "sampling", "ready", "failed"], [True] * 5, [False, False, False, True, False]),
        (["cancelled", "preparing", "deleted"], [True, False, False], [False] * 3),
        (["preparing", "failed", "training", "deleted"], [True, True, False, True], [False] * 4),
    ],
)  # fmt: skip
def test_moves_follow_the_table_and_routing_follows_the_state(tmp_path, path, moved, served):
    models, t = service(tmp_path), tracked("queued")
    models._jobs[1] = t
    for to, ok, answers in zip(path, moved, served, strict=True):
        if to == "sampling":
            models._cards["server-7"] = SimpleNamespace(tags={"lyrics": {}})  # what attaching does
        assert models._move(t, to) is ok, to
        assert (models.route(1, "lyrics").adapter == "server-7") is answers, to
        assert (models._jobs.get(1) is t) is (t.state in ("queued", "preparing", "training", "sampling"))
    assert "server-7" not in models._cards or t.state in ("sampling", "ready")


# --- end to end ----------------------------------------------------------------------------------------


@pytest.fixture
def fake_child(monkeypatch, adapter):  # noqa: F811
    """Training children are the fast stand-in, handing over a copy of a real adapter."""
    monkeypatch.setattr("linernotes.bot.trainer.COMMAND", (sys.executable, str(FAKE)))
    monkeypatch.setenv("FAKE_ADAPTER", str(adapter))
    return monkeypatch


class HangsOnAdapters(Stuck):
    """Holds every request for an adapter (the new model's sample) until released."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.entered = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def generate_prepared(self, requests):
        if any(r.model for r in requests):
            self._loop.call_soon_threadsafe(self.entered.set)
            self.release.wait(20)
        return self.inner.generate_prepared(requests)


async def until(check, timeout: float = 30) -> None:
    """Wait in real time until ``check()`` (a coroutine function or a plain one) holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if asyncio.iscoroutine(found):
            found = await found
        if found:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def nothing_left(tmp_path: Path, guild) -> bool:
    """No file, and no empty folder, of this server's models."""
    return not (tmp_path / "models" / str(guild.id)).exists()


async def answered_by_the_base(env, member, channel) -> bool:
    r = await member.slash(channel, "lyrics", part="chorus")
    return (await env.bot.db.get(footer_id(r.response))).model_id == env.bot.requests.card.model_id


async def test_a_model_whose_sample_times_out_fails_and_is_let_go(simcord_env, server, fake_child, tmp_path):
    guild, channel, alice, _ = server
    bot = simcord_env.bot
    stuck = await serve_stuck(bot, HangsOnAdapters)
    bot.worker.timeout_per_text = 1.0  # the worker's own timeout: the sample is given up after 1 s
    dana = manager(simcord_env, guild)
    try:
        r = await emit(simcord_env, dana, channel, "model train", name="harbor", file=upload())
        await until(lambda: "failed" in (r.response.content if r.response else ""))
    finally:
        stuck.release.set()
    await simcord_env.settle()
    assert "❌ Training **harbor** failed: That took too long" in r.response.content
    (model,) = await models_of(simcord_env, guild)
    assert model.status == "failed" and nothing_left(tmp_path, guild)
    assert not stuck.inner.adapters and bot.models.route(guild.id, "lyrics").adapter is None
    assert await answered_by_the_base(simcord_env, alice, channel)
    listed = (await dana.slash(channel, "model list")).response.content
    assert "❌ failed" in listed and "← in use" not in listed


async def test_a_model_cancelled_while_it_writes_its_sample_is_let_go(
    simcord_env, server, fake_child, tmp_path
):
    guild, channel, alice, _ = server
    bot = simcord_env.bot
    stuck = await serve_stuck(bot, HangsOnAdapters)
    dana = manager(simcord_env, guild)
    try:
        r = await emit(simcord_env, dana, channel, "model train", name="harbor", file=upload())
        await asyncio.wait_for(stuck.entered.wait(), 30)  # trained, attached, writing its sample
        c = await emit(simcord_env, dana, channel, "model cancel")
        await until(_empty(bot, guild))  # the cancel has taken it (its adapter waits for the sample)
    finally:
        stuck.release.set()
    await simcord_env.settle()
    assert c.response.content == "Cancelled training **harbor**; its upload was deleted."
    assert r.response.content.endswith("🛑 Training **harbor** was cancelled.")
    assert await models_of(simcord_env, guild) == [] and nothing_left(tmp_path, guild)
    assert not stuck.inner.adapters and bot.models.in_use() == []
    assert await answered_by_the_base(simcord_env, alice, channel)


def _empty(bot, guild):
    async def check() -> bool:
        return await bot.models.listing(guild.id) == []

    return check


async def test_cancel_or_delete_right_after_train_is_not_lost(simcord_env, server, fake_child, tmp_path):
    guild, channel, *_ = server
    fake_child.setenv("FAKE_HOLD", "preparing")
    dana = manager(simcord_env, guild)
    # Sent as soon as the bot has answered (the job is claimed before that), while the upload is still
    # coming in or being read: a file of many sections takes seconds to read.
    before = len(simcord_env.http_requests)
    r = await emit(simcord_env, dana, channel, "model train", name="harbor", file=many_sections())
    await until(lambda: any(q.path.endswith("/callback") for q in simcord_env.http_requests[before:]))
    c = await dana.slash(channel, "model cancel")
    assert c.response.content == "Cancelled training **harbor**; its upload was deleted."
    assert r.response.content == "🛑 Training **harbor** was cancelled."
    assert await models_of(simcord_env, guild) == [] and nothing_left(tmp_path, guild)

    # Deleted while the child reads the upload (the bot process itself reads none of it).
    r = await emit(simcord_env, dana, channel, "model train", name="harbor", file=upload())
    await until(lambda: _status(simcord_env, guild, "preparing"))
    (model,) = await models_of(simcord_env, guild)
    assert (Path(model.path) / "upload").is_dir() and not (Path(model.path) / "prepared").exists()
    d = await dana.slash(channel, "model delete", name="HARBOR")
    assert d.response.content.startswith("Deleted **harbor**: its upload")
    assert r.response.content.endswith("🗑️ **harbor** was deleted.")
    assert await models_of(simcord_env, guild) == [] and nothing_left(tmp_path, guild)


@pytest.fixture
def holding_child(monkeypatch):
    """Training children are the stand-in, holding in preparing (no adapter needed); each start is noted."""
    monkeypatch.setattr("linernotes.bot.trainer.COMMAND", (sys.executable, str(FAKE)))
    monkeypatch.setenv("FAKE_HOLD", "preparing")
    started: list[TrainingProcess] = []
    start = TrainingProcess.start

    async def noted(self: TrainingProcess) -> None:
        started.append(self)
        await start(self)

    monkeypatch.setattr(TrainingProcess, "start", noted)
    return started


async def test_a_cancel_before_train_is_acknowledged_is_not_lost(
    simcord_env, server, holding_child, monkeypatch
):
    guild, channel, *_ = server
    defer, acknowledged = discord.InteractionResponse.defer, asyncio.Event()

    async def held(self: discord.InteractionResponse, **options: object) -> None:
        await asyncio.wait_for(acknowledged.wait(), 30)  # a slow acknowledgement (the network, a busy loop)
        await defer(self, **options)

    monkeypatch.setattr(discord.InteractionResponse, "defer", held)
    dana = manager(simcord_env, guild)
    before = len(simcord_env.http_requests)
    r = await emit(simcord_env, dana, channel, "model train", name="harbor", file=upload())
    await until(lambda: guild.id in simcord_env.bot.models._jobs)  # claimed; nothing answered yet
    c = await emit(simcord_env, dana, channel, "model cancel")
    await until(lambda: c.response is not None)
    answered = [q.json for q in simcord_env.http_requests[before:] if q.path.endswith("/callback")]
    assert [a["type"] for a in answered] == [4]  # the cancel's reply; /model train not acknowledged yet
    acknowledged.set()
    await simcord_env.settle()
    assert c.response.content == "Cancelled training **harbor**; its upload was deleted."
    assert r.response.content == "🛑 Training **harbor** was cancelled."
    assert holding_child == [] and await models_of(simcord_env, guild) == []
    assert not (simcord_env.bot.models.root / str(guild.id)).exists()


async def test_a_cancel_while_the_job_is_starting_starts_no_child(simcord_env, server, holding_child):
    guild, *_ = server
    bot = simcord_env.bot
    told: list[str] = []
    reading, go_on = asyncio.Event(), asyncio.Event()

    async def notify(text: str) -> None:  # the member's message: held as the job says it starts reading
        told.append(text)
        if text.startswith("⏳ Reading"):
            reading.set()
            await asyncio.wait_for(go_on.wait(), 30)

    name, data = upload()

    async def read() -> bytes:
        return data

    await bot.models.submit(guild.id, "harbor", name, len(data), read, notify)
    await asyncio.wait_for(reading.wait(), 30)
    assert await bot.models.cancel(guild.id) == "Cancelled training **harbor**; its upload was deleted."
    go_on.set()
    await asyncio.wait_for(bot.models._task, 30)  # the queue has run the job: what it does is done
    assert holding_child == []  # no child was started for a job already cancelled
    assert told[-1] == "🛑 Training **harbor** was cancelled."
    assert await models_of(simcord_env, guild) == [] and not (bot.models.root / str(guild.id)).exists()


def many_sections(n: int = 3000) -> tuple[str, bytes]:
    """An upload of ``n`` short unique sections (about 100 kB): seconds of work to read."""
    rng = random.Random(0)
    words = lambda: " ".join("".join(rng.choices(string.ascii_lowercase, k=5)) for _ in range(4))  # noqa: E731
    return ("many.txt", "\n\n".join(f"[Verse]\n{words()}" for _ in range(n)).encode())


async def _status(env, guild, status: str) -> bool:
    found = await models_of(env, guild)
    return bool(found) and found[0].status == status


async def test_uploads_arriving_together_are_counted_together(simcord_env, fake_child):
    bot = simcord_env.bot
    bot.config.training_queue = 2  # one job runs, two wait
    fake_child.setenv("FAKE_HOLD", "training")
    servers = []
    for n in range(4):
        guild = simcord_env.create_guild(f"Server {n}")
        servers.append((guild, guild.create_text_channel("general"), manager(simcord_env, guild, f"m{n}")))
    results = [
        await emit(simcord_env, member, channel, "model train", name="songs", file=upload())
        for _, channel, member in servers
    ]
    await until(lambda: all(r.response and r.response.content for r in results))
    texts = [r.response.content for r in results]
    full = "⚠️ The bot is training other servers' models; try again in a few minutes."
    assert sorted(t == full for t in texts) == [False, False, False, True], texts
    assert all("**songs**" in t for t in texts if t != full)
    simcord.assert_error(simcord_env, ModelError, contains="training other servers' models")
    counts = [len(await models_of(simcord_env, g)) for g, *_ in servers]
    assert sorted(counts) == [0, 1, 1, 1]
    for (guild, *_), n in reversed(list(zip(servers, counts, strict=True))):
        if n:
            await bot.models.cancel(guild.id)
    await simcord_env.settle()
    assert [await models_of(simcord_env, g) for g, *_ in servers] == [[]] * 4


async def test_a_server_waits_between_uploads(simcord_env, server):
    guild, channel, *_ = server
    simcord_env.bot.config.train_cooldown = 600
    dana = manager(simcord_env, guild)
    first = await dana.slash(channel, "model train", name="harbor", file=LATIN1)
    assert "not UTF-8 text" in first.response.content  # refused once read: it still counts
    again = await dana.slash(channel, "model train", name="harbor", file=upload())
    assert again.response.content.startswith(
        "⚠️ This server can send /model train another file in 9 min 5"  # 9 min 5x s
    ) or again.response.content.startswith("⚠️ This server can send /model train another file in 10 min")
    assert again.response.content.endswith("(one every 10 min 0 s).")
    simcord.assert_error(simcord_env, ModelError, contains="another file in")
    other = simcord_env.create_guild("Elsewhere")
    elsewhere = other.create_text_channel("general")
    theirs = await manager(simcord_env, other, "fred").slash(elsewhere, "model train", name="x", file=LATIN1)
    assert "not UTF-8 text" in theirs.response.content  # another server's uploads are their own
    await simcord_env.advance_time(601)
    later = await dana.slash(channel, "model train", name="harbor", file=LATIN1)
    assert "not UTF-8 text" in later.response.content
    simcord.assert_error(simcord_env, UploadError)
