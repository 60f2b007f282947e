"""The site mounted in the bot's process (``web_port``): what Discord answers is on the web, /show links to
it, and a server's managers choose whether their models' texts are public (``/model publish``)."""

from __future__ import annotations

import aiohttp
import discord
import pytest
import simcord

from linernotes.bot.web.privacy import is_published
from tests.bot.helpers import footer_id


@pytest.fixture
def bot_settings(bot_settings):
    return {**bot_settings, "web_port": 0, "web_url": "https://notes.example.org/", "web_rate": 0}


async def test_an_answer_in_discord_is_on_the_web_and_show_links_to_it(simcord_env, server):
    guild, channel, alice, _ = server
    bot = simcord_env.bot
    answer = await alice.slash(channel, "review", genre="Metal", score=7.5)  # a miss: written for alice
    gid = footer_id(answer.response)
    show = await alice.slash(channel, "show", id=gid)
    (link,) = [
        line.split(": ", 1)[1] for line in show.response.content.splitlines() if line.startswith("On the web")
    ]
    assert link.startswith("https://notes.example.org/g/") and link == await bot.web_link(gid)
    assert bot.site_url == "https://notes.example.org"
    public_id = link.rsplit("/", 1)[1]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{bot.site.address}/api/g/{public_id}") as r:
            body = await r.json()
        async with session.get(f"{bot.site.address}/g/{public_id}") as r:
            page = await r.text()
    assert body["text"] == (await bot.generation(gid)).text and body["url"] == link
    assert "Metal · 7.5/10" in page and str(guild.id) not in page and str(channel.id) not in page
    assert "alice" not in page and str(answer.response.id) not in page
    costs = await bot.db.fetch(
        "SELECT texts, tokens, seconds FROM generation_costs WHERE model_id = ?", (bot.card.model_id,)
    )
    assert (
        costs[0][0] >= 1 and costs[0][1] > 0 and costs[0][2] > 0
    )  # the miss's cost, recorded as it was written


async def test_show_gives_no_web_link_for_a_private_text(simcord_env, server):
    _, channel, alice, _ = server
    answer = await alice.slash(channel, "lyrics", part="chorus", seed="a line of my own")
    show = await alice.slash(channel, "show", id=footer_id(answer.response))
    assert "/channels/" in show.response.content and "On the web" not in show.response.content


async def test_managers_publish_their_servers_models_texts(simcord_env, server):
    guild, channel, alice, _ = server
    role = guild.create_role("managers", permissions=discord.Permissions(manage_guild=True))
    dana = guild.add_member(simcord_env.create_user("dana"), roles=[role])
    on = await dana.slash(channel, "model publish", choice="on")
    assert "may now be shown on the bot's website (https://notes.example.org)" in on.response.content
    assert await is_published(simcord_env.bot.db, guild.id)
    with pytest.raises(simcord.SetupError, match="not visible to this user"):  # not a manager
        await alice.slash(channel, "model publish", choice="on")
    off = await dana.slash(channel, "model publish", choice="off")
    assert "no longer shown" in off.response.content and not await is_published(simcord_env.bot.db, guild.id)
