"""The warm-up's plan: which keys a run limited to a few generations fills first."""

from __future__ import annotations

import pytest

from linernotes.bot.cache import Key, key_for
from tests.conftest import ENGINES

# Each test runs on both stores: SQLite and PostgreSQL.
pytestmark = [
    pytest.mark.simcord(settle_timeout=120),
    pytest.mark.parametrize("bot_store", ENGINES, indirect=True),
]
LIMIT = 4


@pytest.fixture
def bot_settings(bot_settings):
    """Hot keys want 3 generations each: more than one limited run can give them all."""
    return {**bot_settings, "warm_limit": LIMIT, "hot_per_key": 3}


async def test_a_short_warm_up_covers_every_asked_for_key_before_deepening_any(simcord_env):
    bot = simcord_env.bot
    card = bot.requests.card
    keys = [f"review|{genre}|7.5" for genre in card.values("review", "genre")[:LIMIT]]
    assert len(keys) == LIMIT
    for key in keys:  # each asked for once: all hot, none cached
        await bot.db.note_demand(key)
    assert await bot.warm_now() == LIMIT
    depth = await bot.db.depth(card.model_id)
    assert [depth.get(k, 0) for k in keys] == [1] * LIMIT  # not 3 for the first and 1 for the next


async def test_warming_named_keys_fills_those_alone_to_the_hot_depth(simcord_env):
    bot = simcord_env.bot
    card = bot.requests.card
    genre = card.values("review", "genre")[0]
    wanted = key_for("review", {"genre": genre, "score": 9.0}, bot.config.score_bucket)
    unknown = Key("review|Polka|9.0", "review", {"genre": "Polka", "score": 9.0})  # not a genre it knows
    await bot.db.note_demand("review|" + card.values("review", "genre")[1] + "|7.5")  # hot, but not named
    assert await bot.warm_now([wanted, unknown]) == 3  # the hot depth, within the run's limit of 4
    depth = await bot.db.depth(card.model_id)
    assert depth == {wanted.key: 3}
