"""Discord's REST API failing mid-answer loses nothing: texts stay cached, no delivery is left half done."""

from __future__ import annotations

import pytest
import simcord

from tests.bot.helpers import callbacks

pytestmark = pytest.mark.simcord(settle_timeout=60)
KEY = "lyrics|bridge|"


async def depth(env) -> int:
    """Cached, never-shown generations for the key these tests ask for."""
    return (await env.bot.db.depth(env.bot.requests.card.model_id)).get(KEY, 0)


async def test_failed_defer_keeps_the_generated_text(simcord_env, server):
    _, channel, alice, bob = server
    simcord_env.inject_error("POST", "/interactions/*/callback", status=500)
    await alice.slash(channel, "lyrics", part="bridge")  # a miss: queued, then the defer fails
    simcord.assert_error(simcord_env)
    assert await depth(simcord_env) == 1  # the text the worker wrote anyway is in the cache
    r = await bob.slash(channel, "lyrics", part="bridge")
    assert r.response.embeds and callbacks(simcord_env)[-1]["type"] == 4  # a hit


@pytest.mark.parametrize("status", [500, 429])
async def test_failed_final_edit_leaves_no_pending_delivery(simcord_env, server, status):
    _, channel, alice, bob = server
    simcord_env.inject_error("PATCH", "/webhooks/*/*/messages/@original", status=status)
    r = await alice.slash(channel, "lyrics", part="bridge")
    simcord.assert_error(simcord_env)
    assert r.response.content.startswith("⚠️")  # told it failed (the error edit gets through)
    pending = await simcord_env.bot.db.fetch("SELECT COUNT(*) FROM deliveries WHERE message_id IS NULL")
    assert pending[0][0] == 0  # no delivery left waiting for a message that was never sent
    assert await depth(simcord_env) == 1  # never shown: the next asker gets it
    again = await bob.slash(channel, "lyrics", part="bridge")
    assert again.response.embeds
