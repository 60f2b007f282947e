"""Bot tests run the real bot against SimCord: a simulated Discord with discord.py's real machinery."""

from __future__ import annotations

from pathlib import Path

import pytest

from linernotes.bot import create_bot
from linernotes.bot.engines import is_postgres
from tests.conftest import store_at


@pytest.fixture
def bot_settings() -> dict:
    """Settings a test may change before the bot is built (no scheduler: tests call the job directly)."""
    # The tiny test model writes short texts: accept any length so behaviour, not prose, is tested.
    return {
        "warm_interval": 0,
        "cooldown": 0,
        "per_key": 1,
        "hot_per_key": 1,
        "shard_count": 1,
        "min_chars": 1,
        "sync_interval": 0,  # tests call sync_now() where they need it (a real-clock job keeps SimCord from settling)
    }


@pytest.fixture
def bot_checkpoint(tiny_fp32):
    """The checkpoint the bot serves (a test module may swap in another)."""
    return tiny_fp32


@pytest.fixture
def bot_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The bot's store: SQLite, unless a test asks for an engine
    (``@pytest.mark.parametrize("bot_store", ENGINES, indirect=True)``)."""
    return store_at(request, tmp_path, getattr(request, "param", "sqlite"))


@pytest.fixture
async def simcord_bot(bot_checkpoint, bot_store, bot_settings, tmp_path):
    if is_postgres(bot_store):
        bot_settings = {"models_dir": str(tmp_path / "server-models"), **bot_settings}
    bot = create_bot(bot_checkpoint, bot_store, **bot_settings)
    yield bot
    await bot.close()  # SimCord detaches a bot without closing it: close it as a real shutdown does


@pytest.fixture
def server(simcord_env):
    guild = simcord_env.create_guild("Listening Party")
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    bob = guild.add_member(simcord_env.create_user("bob"))
    return guild, channel, alice, bob
