"""The generation worker recovers: a dead thread pool is replaced, a stuck job times out and says so; a
swap serves another model without disturbing the jobs already queued."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
import simcord

from linernotes.bot.config import generate_config
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.model.worker import BACKGROUND, GenerationWorker, JobTimeout
from tests.bot.helpers import footer_id

pytestmark = pytest.mark.simcord(settle_timeout=60)


class Stuck:
    """A generator that hangs on a request whose seed line is "hang" (until ``release`` is set, or
    some seconds pass, so an abandoned thread ends within the test)."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.release = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # card, config, prepare: the real generator's

    def generate(self, requests):
        return self.generate_prepared([self.inner.prepare(r) for r in requests])  # as Generator does

    def generate_prepared(self, requests):
        if any(r.seed_line == "hang" for r in requests):
            self.release.wait(12)
        return self.inner.generate_prepared(requests)


class Served(Stuck):
    """A stuck-able generator that also records the parts of the requests it generated."""

    def __init__(self, inner: Generator) -> None:
        super().__init__(inner)
        self.parts: list[str] = []

    def generate_prepared(self, requests):
        self.parts += [r.tags["part"] for r in requests]
        return super().generate_prepared(requests)


async def serve_stuck(bot, wrapper: type[Stuck] = Stuck) -> Stuck:
    """Make the bot serve its own checkpoint wrapped in ``wrapper``, swapped in as a reload does."""
    inner = await asyncio.to_thread(Generator.load, bot.config.checkpoint, generate_config(bot.config))
    stuck = wrapper(inner)
    await bot.worker.swap(lambda: stuck)
    return stuck


def job(part: str = "verse", seed_line: str | None = None) -> list[Request]:
    return [Request("lyrics", {"part": part}, seed_line, Sampling(seed=1, max_new_tokens=20))]


@pytest.fixture
def generator(tiny_fp32) -> Generator:
    return Generator.load(tiny_fp32, GenerateConfig(min_chars=1))


async def test_a_dead_thread_pool_is_replaced(generator, caplog):
    worker = GenerationWorker(generator)
    worker.start()
    try:
        worker._executor.shutdown()  # the thread is gone (as after a crash or a stray shutdown)
        (result,) = await worker.submit(job())
        assert result.ok and worker.restarts == 1
        assert "generation thread was gone" in caplog.text
    finally:
        await worker.stop()


async def test_a_stuck_job_times_out_and_the_queue_moves_on(generator, caplog):
    stuck = Stuck(generator)
    worker = GenerationWorker(stuck, timeout_per_text=3)  # type: ignore[arg-type]
    worker.start()
    try:
        hung = worker.submit(job(seed_line="hang"))
        await asyncio.sleep(
            0
        )  # running alone (a request waiting with it would share its batch, and its fate)
        after = worker.submit(job("chorus"))
        with pytest.raises(JobTimeout, match="took too long"):
            await hung
        (result,) = await after  # served by a fresh thread while the stuck one still waits
        assert result.ok and result.request.tags["part"] == "chorus" and worker.restarts == 1
        assert "ran past its" in caplog.text
    finally:
        stuck.release.set()
        await worker.stop()


async def test_a_swap_serves_later_jobs_and_earlier_ones_keep_their_model(generator):
    old, new = Served(generator), Served(generator)
    worker = GenerationWorker(old)  # type: ignore[arg-type]
    worker.start()
    try:
        busy = worker.submit(job(seed_line="hang"))  # holds the thread, so the next jobs wait in the queue
        await asyncio.sleep(0)
        queued = worker.submit(job("chorus"), BACKGROUND)  # queued before the swap, run after it
        swap = asyncio.ensure_future(worker.swap(lambda: new))  # type: ignore[arg-type,return-value]
        await asyncio.sleep(0)
        assert worker.depth == 3 and not swap.done()  # the swap waits its turn: no job is cut short
        old.release.set()
        assert await swap is generator.card
        later = worker.submit(job("bridge"))
        await asyncio.gather(busy, queued, later)
        assert old.parts == ["verse", "chorus"] and new.parts == ["bridge"]
        await worker.detach("nobody")  # an adapter the model does not hold: nothing to let go
    finally:
        old.release.set()
        await worker.stop()


@pytest.fixture
def bot_settings(bot_settings):
    return {**bot_settings, "job_timeout": 5}


async def test_the_user_is_told_when_their_job_times_out(simcord_env, server, caplog):
    _, channel, alice, bob = server
    bot = simcord_env.bot
    await serve_stuck(bot)
    with caplog.at_level(logging.ERROR, logger="linernotes.model.worker"):
        r = await alice.slash(channel, "lyrics", part="verse", seed="hang")
    assert r.response.content.startswith("⚠️ That took too long") and not r.response.embeds
    assert "ran past its 5 s timeout" in caplog.text
    simcord.assert_error(simcord_env, JobTimeout)
    served = await bob.slash(channel, "lyrics", part="chorus", seed="a line")
    assert served.response.embeds and footer_id(served.response)
