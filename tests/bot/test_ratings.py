"""A user's vote follows the rating reactions they still have, across restarts and database faults."""

from __future__ import annotations

import pytest

from linernotes.bot.storage import Database
from tests.bot.helpers import footer_id, store_down
from tests.conftest import ENGINES

# Each test runs on both stores: SQLite and PostgreSQL.
pytestmark = [
    pytest.mark.simcord(settle_timeout=60),
    pytest.mark.parametrize("bot_store", ENGINES, indirect=True),
]


async def test_vote_follows_the_reactions_still_there(simcord_env, server):
    _, channel, alice, _ = server
    r = await alice.slash(channel, "lyrics", part="verse")
    gid, db = footer_id(r.response), simcord_env.bot.db
    await alice.react(r.response, "👍")
    await alice.react(r.response, "👎")
    assert await db.votes(gid) == (0, 1)  # the newest reaction is the vote
    await alice.unreact(r.response, "👎")
    assert await db.votes(gid) == (1, 0)  # 👍 is still shown: so is the vote


async def test_vote_follows_the_reactions_after_a_restart(simcord_env, server):
    _, channel, alice, _ = server
    r = await alice.slash(channel, "lyrics", part="verse")
    gid = footer_id(r.response)
    await alice.react(r.response, "👍")
    await alice.react(r.response, "👎")
    await simcord_env.restart_bot()
    await alice.unreact(r.response, "👎")
    assert await simcord_env.bot.db.votes(gid) == (1, 0)
    await alice.unreact(r.response, "👍")
    assert await simcord_env.bot.db.votes(gid) == (0, 0)


async def test_votes_that_cannot_be_written_are_kept_and_retried(simcord_env, server, request):
    guild, channel, alice, bob = server
    r = await alice.slash(channel, "lyrics", part="verse")
    gid, db = footer_id(r.response), simcord_env.bot.db
    async with store_down(db, request):
        await alice.react(r.response, "👍")
        await bob.react(r.response, "👎")
        assert len(db.unsaved) == 2
    carol = guild.add_member(simcord_env.create_user("carol"))
    await carol.react(r.response, "👍")  # the next write retries the waiting ones first
    assert await db.votes(gid) == (2, 1) and not db.unsaved


async def test_unsaved_votes_are_written_at_shutdown(simcord_env, server, request):
    _, channel, alice, _ = server
    r = await alice.slash(channel, "lyrics", part="verse")
    gid, bot = footer_id(r.response), simcord_env.bot
    async with store_down(bot.db, request):
        await alice.react(r.response, "👎")
    await bot.db.close()  # as at shutdown: the waiting vote is written then
    again = Database(bot.config.database)
    await again.open()
    try:
        assert await again.votes(gid) == (0, 1)
    finally:
        await again.close()
