"""The PostgreSQL server restarting under a running bot: requests fail clearly meanwhile, and the bot
reconnects by itself (no restart of the bot) once the server is back."""

from __future__ import annotations

import pytest
import simcord

from linernotes.bot.engines import StorageError
from linernotes.bot.errors import STORAGE
from tests.bot.helpers import fill, footer_id

pytestmark = [
    pytest.mark.simcord(settle_timeout=60),
    pytest.mark.parametrize("bot_store", ["postgresql"], indirect=True),
]


async def test_requests_fail_clearly_while_the_server_is_down_and_work_after(simcord_env, server, postgres):
    _, channel, alice, bob = server
    await fill(simcord_env, "review", {"genre": "Metal", "score": 7.5}, 3)
    before = await alice.slash(channel, "review", genre="Metal", score=7.5)
    postgres.stop()  # a restart, or a failover, while the bot runs
    try:
        down = await bob.slash(channel, "review", genre="Metal", score=7.5)
        assert down.response.content == STORAGE and down.ephemeral  # no host, no URL, no trace
        simcord.assert_error(simcord_env, StorageError)
    finally:
        postgres.start()
    after = await bob.slash(channel, "review", genre="Metal", score=7.5)  # the pool reconnects
    assert after.response.embeds and footer_id(after.response) != footer_id(before.response)
    await bob.react(after.response, "👍")
    assert await simcord_env.bot.db.votes(footer_id(after.response)) == (1, 0)
