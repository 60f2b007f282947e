"""Bot tests run the real bot against SimCord: a simulated Discord with discord.py's real machinery."""

from __future__ import annotations

import pytest

from linernotes.bot import create_bot


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
    }


@pytest.fixture
def bot_checkpoint(tiny_fp32):
    """The checkpoint the bot serves (a test module may swap in another)."""
    return tiny_fp32


@pytest.fixture
async def simcord_bot(bot_checkpoint, tmp_path, bot_settings):
    bot = create_bot(bot_checkpoint, tmp_path / "bot.sqlite3", **bot_settings)
    yield bot
    await bot.close()  # SimCord detaches a bot without closing it: close it as a real shutdown does


@pytest.fixture
def server(simcord_env):
    guild = simcord_env.create_guild("Listening Party")
    channel = guild.create_text_channel("general")
    alice = guild.add_member(simcord_env.create_user("alice"))
    bob = guild.add_member(simcord_env.create_user("bob"))
    return guild, channel, alice, bob
