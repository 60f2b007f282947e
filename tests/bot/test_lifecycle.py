"""The lifecycle: setup_hook opens the database, starts the worker, server models and the scheduler;
close stops them in reverse.

Run outside SimCord: its virtual clock would fire the real-clock warm-up job during the test.
"""

from __future__ import annotations

from linernotes.bot import create_bot
from linernotes.bot.migrations import MIGRATIONS
from linernotes.model.generator import Request


async def test_setup_and_close(tiny_fp32, tmp_path):
    bot = create_bot(tiny_fp32, tmp_path / "bot.sqlite3", sync="off", warm_interval=3600, min_chars=1)
    await bot.setup_hook()
    try:
        assert bot.scheduler is not None and bot.scheduler.running
        job = bot.scheduler.get_job("linernotes-warm")
        assert job.max_instances == 1 and job.coalesce
        assert await bot.db.versions() == [m[0] for m in MIGRATIONS]
        assert {c.name for c in bot.tree.get_commands()} == {
            "review",
            "product",
            "lyrics",
            "show",
            "stats",
            "warm",
            "reload",
            "model",
        }
        (result,) = await bot.worker.submit([Request("lyrics", {"part": "intro"})])
        assert result.model_id == bot.requests.card.model_id
    finally:
        await bot.close()
    assert bot.scheduler is None and bot.worker._executor is None and bot.db.engine._db is None
    assert bot.models is None  # stopped first: its training child would outlive the worker otherwise
    await bot.close()  # closing twice is harmless
