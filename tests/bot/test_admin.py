"""``/warm`` (server managers, one warm-up at a time) and ``/reload`` (the bot's operators only)."""

from __future__ import annotations

import shutil

import discord
import pytest

from linernotes.bot.admin import RELOAD_REFUSED, ReloadRefused
from tests.bot.helpers import burst
from tests.conftest import ENGINES

pytestmark = pytest.mark.simcord(settle_timeout=120)
WARM_LIMIT = 4  # generations per warm-up run: a few keys' worth keeps these tests quick


@pytest.fixture
def bot_settings(bot_settings):
    return {**bot_settings, "warm_limit": WARM_LIMIT}


def managers(env, guild, n: int) -> list:
    """``n`` members who may manage the server (they see /warm and /reload)."""
    role = guild.create_role("admins", permissions=discord.Permissions(manage_guild=True))
    return [guild.add_member(env.create_user(f"manager{i}"), roles=[role]) for i in range(n)]


def refusals_only(env) -> int:
    """How many errors the bot recorded, checking that each is a reload refusal (acknowledges them)."""
    errors = env.errors
    assert all(isinstance(getattr(e, "original", e), ReloadRefused) for e in errors)
    return len(errors)


@pytest.mark.parametrize("bot_store", ENGINES, indirect=True)
async def test_warm_is_for_managers(simcord_env, server):
    guild, channel, alice, _ = server
    assert "warm" not in alice.available_commands(channel)
    (dana,) = managers(simcord_env, guild, 1)
    assert {"warm", "reload"} <= set(dana.available_commands(channel))
    r = await dana.slash(channel, "warm")
    assert r.ephemeral and r.response.content == f"Warm-up stored {WARM_LIMIT} new generations."


@pytest.mark.parametrize("bot_store", ENGINES, indirect=True)
async def test_concurrent_warm_ups_fill_each_key_once(simcord_env, server):
    guild, channel, *_ = server
    bot = simcord_env.bot
    results = await burst(simcord_env, [(m, channel, "warm", {}) for m in managers(simcord_env, guild, 3)])
    stored = [int(r.response.content.split("stored ")[1].split()[0]) for r in results]
    depth = await bot.db.depth(bot.requests.card.model_id)
    assert max(depth.values()) == bot.config.per_key == 1  # no key filled twice over
    assert sum(stored) == sum(depth.values()) == 3 * WARM_LIMIT  # each run took the next keys


async def test_reload_refusals_all_read_the_same(simcord_env, server, tiny_checkpoint, tmp_path):
    guild, channel, *_ = server
    bot = simcord_env.bot
    before = bot.requests.card.model_id
    (dana,) = managers(simcord_env, guild, 1)  # manages this server, but is no operator of the bot
    (tmp_path / "ckpts").mkdir()
    shutil.copytree(tiny_checkpoint, tmp_path / "ckpts" / "next")
    bot.config.checkpoints_dir = str(tmp_path / "ckpts")
    answers = set()
    for target in ("next", str(tiny_checkpoint), "/etc", "/etc/passwd", "/no/such/dir"):
        r = await dana.slash(channel, "reload", checkpoint=target)
        answers.add(r.response.content)
    assert answers == {f"⚠️ {RELOAD_REFUSED}"}  # no path-existence oracle
    assert refusals_only(simcord_env) == 5
    assert bot.requests.card.model_id == before


async def test_operator_reloads_only_from_the_checkpoint_directory(
    simcord_env, server, tiny_checkpoint, tmp_path
):
    guild, channel, alice, _ = server
    bot = simcord_env.bot
    (tmp_path / "ckpts").mkdir()
    shutil.copytree(tiny_checkpoint, tmp_path / "ckpts" / "next")
    bot.config.checkpoints_dir = str(tmp_path / "ckpts")
    (dana,) = managers(simcord_env, guild, 1)
    bot.config.operators.append(str(dana.id))
    refused = set()
    for target in (str(tiny_checkpoint), "../ckpts/../..", "/etc", "missing"):
        refused.add((await dana.slash(channel, "reload", checkpoint=target)).response.content)
    assert refused == {f"⚠️ {RELOAD_REFUSED}"} and refusals_only(simcord_env) == 4
    before = bot.requests.card.model_id
    r = await dana.slash(channel, "reload", checkpoint="next")
    after = bot.requests.card.model_id
    assert after != before and r.response.content == f"Now serving {after}."
    served = await alice.slash(channel, "lyrics", part="verse")
    assert after in served.response.embeds[0].footer.text
