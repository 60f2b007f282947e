"""Refusals cost no I/O: a user's queued-job limit, the cooldown, and a full queue for what is always generated
are checked first; a cached text is served even while the generator is busy."""

from __future__ import annotations

import pytest

from linernotes.model.worker import QueueFull
from tests.bot.helpers import burst, fill

pytestmark = pytest.mark.simcord(settle_timeout=60)


@pytest.fixture
def bot_settings(bot_settings):
    return {**bot_settings, "queue_size": 3, "max_queued_per_user": 2, "cooldown": 0}


@pytest.fixture
async def statements(simcord_env):
    """Every SQL statement the bot's database runs from now on."""
    seen: list[str] = []
    await simcord_env.bot.db.engine.db.set_trace_callback(seen.append)
    return seen


def refused(env, results) -> list[str]:
    """What the refused requests were told (each refusal was a QueueFull; acknowledged here)."""
    assert all(isinstance(getattr(e, "original", e), QueueFull) for e in env.errors)
    return [r.response.content for r in results if r.ephemeral]


async def test_a_users_extra_request_is_refused_before_any_io(simcord_env, server, statements):
    _, channel, alice, _ = server
    asks = [(alice, channel, "lyrics", {"part": "verse", "seed": f"line {i}"}) for i in range(3)]
    results = await burst(simcord_env, asks)
    assert refused(simcord_env, results) == ["you already have 2 requests waiting; wait for them first"]
    demand = [s for s in statements if s.startswith("INSERT INTO demand")]
    assert len(demand) == 2  # only the two answered requests touched the database


async def test_a_full_queue_refuses_before_any_io(simcord_env, server, statements):
    guild, channel, *_ = server
    fans = [guild.add_member(simcord_env.create_user(f"fan{i}")) for i in range(6)]
    asks = [(fan, channel, "lyrics", {"part": "chorus", "seed": f"{fan.name} sings"}) for fan in fans]
    results = await burst(simcord_env, asks)
    turned_away = refused(simcord_env, results)
    assert turned_away and all(text.startswith("the generator is busy") for text in turned_away)
    answered = [r for r in results if r.response.embeds]
    assert len(answered) + len(turned_away) == len(fans)
    assert len([s for s in statements if s.startswith("INSERT INTO demand")]) == len(answered)


async def test_a_cached_text_is_served_while_the_generator_is_busy(simcord_env, server):
    guild, channel, alice, _ = server
    await fill(simcord_env, "review", {"genre": "Metal", "score": 7.5}, 1)
    fans = [guild.add_member(simcord_env.create_user(f"fan{i}")) for i in range(6)]
    asks = [(fan, channel, "lyrics", {"part": "chorus", "seed": f"{fan.name} sings"}) for fan in fans]
    results = await burst(simcord_env, [*asks, (alice, channel, "review", {"genre": "Metal", "score": 7.5})])
    assert refused(simcord_env, results)  # the queue was full when alice asked
    assert results[-1].response.embeds and not results[-1].ephemeral  # answered from the cache
