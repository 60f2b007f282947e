"""/show and /stats see only the asking server: no server learns another's ids, counts or ratings."""

from __future__ import annotations

import pytest

from tests.bot.helpers import footer_id
from tests.conftest import ENGINES

# Each test runs on both stores: SQLite and PostgreSQL.
pytestmark = [
    pytest.mark.simcord(settle_timeout=60),
    pytest.mark.parametrize("bot_store", ENGINES, indirect=True),
]


@pytest.fixture
def other_server(simcord_env):
    guild = simcord_env.create_guild("Elsewhere")
    channel = guild.create_text_channel("general")
    return guild, channel, guild.add_member(simcord_env.create_user("eve"))


async def test_show_only_links_what_was_posted_in_this_server(simcord_env, server, other_server):
    guild, channel, alice, _ = server
    _, elsewhere, eve = other_server
    r = await alice.slash(channel, "review", genre="Rap", score=9.0)
    gid = footer_id(r.response)
    here = await alice.slash(channel, "show", id=gid)
    assert f"/channels/{guild.id}/{channel.id}/{r.response.id}" in here.response.content
    there = await eve.slash(elsewhere, "show", id=gid)
    assert there.ephemeral and there.response.content == f"No generation #{gid} was posted in this server."
    missing = await eve.slash(elsewhere, "show", id=gid + 1000)
    assert missing.response.content == f"No generation #{gid + 1000} was posted in this server."


async def test_stats_count_only_this_server(simcord_env, server, other_server):
    _, channel, alice, bob = server
    _, elsewhere, eve = other_server
    r = await alice.slash(channel, "lyrics", part="verse")
    await bob.react(r.response, "👍")

    def fields(result) -> dict[str, str]:
        return {f.name.split(" (")[0]: f.value for f in result.response.embeds[0].fields}

    here = fields(await alice.slash(channel, "stats"))
    assert here["Served"] == "1 answers from 1 generations" and "👍 1 · 👎 0" in here["Ratings"]
    there = fields(await eve.slash(elsewhere, "stats"))
    assert there["Served"] == "0 answers from 0 generations" and "👍 0 · 👎 0" in there["Ratings"]
