"""Limits that protect the bot: per-user cooldown, queue caps, priorities, positions."""

from __future__ import annotations

import asyncio

import pytest
import simcord

from linernotes.common.errors import LinernotesError
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.model.worker import BACKGROUND, INTERACTIVE, GenerationWorker, QueueFull

pytestmark = pytest.mark.simcord(settle_timeout=60)


@pytest.fixture
def bot_settings(bot_settings):
    return {**bot_settings, "cooldown": 30}


async def test_cooldown_per_user(simcord_env, server):
    _, channel, alice, bob = server
    await alice.slash(channel, "lyrics", part="hook")
    again = await alice.slash(channel, "lyrics", part="hook")
    assert again.ephemeral and "Slow down" in again.response.content
    simcord.assert_error(simcord_env)
    other = await bob.slash(channel, "lyrics", part="hook")
    assert other.response.embeds


class Recording:
    """Wraps a generator to record the batches in which requests reach the model thread."""

    def __init__(self, generator: Generator) -> None:
        self.inner, self.order = generator, []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # card, config, prepare: the real generator's

    def generate(self, requests):
        return self.generate_prepared([self.inner.prepare(r) for r in requests])  # as Generator does

    def generate_prepared(self, requests):
        self.order.append([r.tags.get("part") for r in requests])
        return self.inner.generate_prepared(requests)


async def test_worker_queue_caps_priority_and_positions(tiny_fp32):
    gen = Recording(Generator.load(tiny_fp32, GenerateConfig(min_chars=1)))
    worker = GenerationWorker(gen, max_queue=6, max_per_owner=2)  # type: ignore[arg-type]
    worker.start()
    try:

        def job(part, seed):
            return [Request("lyrics", {"part": part}, sampling=Sampling(seed=seed, max_new_tokens=20))]

        first = worker.submit(job("intro", 1), BACKGROUND)
        await asyncio.sleep(0)  # the worker picks it up on the next turn of the loop
        warm = [worker.submit(job("outro", 2 + i), BACKGROUND) for i in range(2)]
        alice = [worker.submit(job("chorus", 10 + i), INTERACTIVE, owner="alice") for i in range(2)]
        with pytest.raises(QueueFull, match="you already have 2 requests waiting"):
            worker.submit(job("chorus", 20), INTERACTIVE, owner="alice")
        bob = worker.submit(job("verse", 30), INTERACTIVE, owner="bob")
        assert worker.position(first) == 1  # running
        assert [worker.position(f) for f in alice] == [2, 3]  # people jump ahead of warm-up
        assert worker.position(bob) == 4 and [worker.position(f) for f in warm] == [5, 6]
        bridge = worker.submit(job("bridge", 40), BACKGROUND)
        with pytest.raises(QueueFull, match="busy"):
            worker.submit(job("bridge", 41), BACKGROUND)
        results = await asyncio.gather(first, *alice, bob, *warm)
        await bridge
        # Each caller gets its own result back, although the waiting ones ran together in one batch.
        # (A retry draws with the next seed, so the seed asked for is the one used less the retries.)
        asked = [r[0].request.sampling.seed - r[0].attempts + 1 for r in results]
        assert asked == [1, 10, 11, 30, 2, 3]
        # People first (in one batch), then the warm-up jobs waiting together (in another).
        assert gen.order == [["intro"], ["chorus", "chorus", "verse"], ["outro", "outro", "bridge"]]
        assert isinstance(QueueFull("x"), LinernotesError)
    finally:
        await worker.stop()


async def test_many_requests_are_all_acknowledged_before_generation(simcord_env, server):
    """Concurrent misses: every interaction gets its defer (type 5) before any generated answer."""
    _, channel, *_ = server
    members = [server[0].add_member(simcord_env.create_user(f"fan{i}")) for i in range(8)]
    for member in members:
        await member.slash(channel, "lyrics", part="chorus", seed=f"line from {member.name}")
    acks = [q for q in simcord_env.http_requests if q.path.endswith("/callback")]
    assert len(acks) == 8 and all(q.json == {"type": 5} for q in acks)
    answered = [
        q for q in simcord_env.http_requests if q.method == "PATCH" and q.json and q.json.get("embeds")
    ]
    assert len(answered) == 8
    assert simcord.__version__
