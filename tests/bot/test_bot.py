"""The bot end to end in SimCord: commands, cache hits and misses, ratings, buttons, failures, safety."""

from __future__ import annotations

import pytest
import simcord

from linernotes.common.errors import TagError
from tests.bot.helpers import callbacks, fill, footer_id
from tests.conftest import ENGINES

# Each test runs on both stores: SQLite and PostgreSQL.
pytestmark = [
    pytest.mark.simcord(settle_timeout=60),
    pytest.mark.parametrize("bot_store", ENGINES, indirect=True),
]


async def test_commands_follow_the_card(simcord_env, server):
    _, channel, alice, _ = server
    assert set(alice.available_commands(channel)) == {"review", "product", "lyrics", "show", "stats"}
    tree = {c.name: c for c in simcord_env.bot.tree.get_commands()}
    assert {"warm", "reload"} <= set(tree)
    genre = next(p for p in tree["review"].parameters if p.name == "genre")
    assert {c.value for c in genre.choices} == set(simcord_env.bot.requests.card.values("review", "genre"))


async def test_miss_is_deferred_then_answered_and_hit_is_immediate(simcord_env, server):
    _, channel, alice, bob = server
    miss = await alice.slash(channel, "review", genre="Metal", score=7.5)
    assert callbacks(simcord_env)[-1] == {"type": 5}  # acknowledged first, generated after
    embed = miss.response.embeds[0]
    assert embed.title == "Metal · 7.5/10" and embed.description
    await fill(simcord_env, "review", {"genre": "Metal", "score": 7.5}, 2)
    hit = await bob.slash(channel, "review", genre="Metal", score=7.6)  # same 0.5 bucket
    assert callbacks(simcord_env)[-1]["type"] == 4  # answered in the first response
    assert hit.response.embeds[0].title == "Metal · 7.6/10"
    second = await alice.slash(channel, "review", genre="Metal", score=7.5)
    assert footer_id(second.response) != footer_id(hit.response)  # nobody in this channel saw it before
    db = simcord_env.bot.db
    assert await db.generation_for_message(hit.response.id) == footer_id(hit.response)
    assert (await db.totals())["served"] == 3


async def test_channel_sees_each_cached_text_once(simcord_env, server):
    guild, channel, alice, bob = server
    other = guild.create_text_channel("other")
    await fill(simcord_env, "lyrics", {"part": "chorus"}, 1)
    first = await alice.slash(channel, "lyrics", part="chorus")
    elsewhere = await bob.slash(other, "lyrics", part="chorus")
    assert footer_id(first.response) == footer_id(elsewhere.response)  # other channel: may reuse
    again = await bob.slash(channel, "lyrics", part="chorus")
    assert footer_id(again.response) != footer_id(first.response)  # same channel: a fresh one


async def test_out_of_range_and_unknown_values(simcord_env, server):
    _, channel, alice, _ = server
    with pytest.raises(simcord.OptionError) as e:
        await alice.slash(channel, "review", genre="Metal", score=11.0)
    assert e.value.code == "option-range" and e.value.option == "score"
    with pytest.raises(simcord.OptionError):
        await alice.slash(channel, "review", genre="Polka", score=5.0)
    low = min(simcord_env.bot.requests.card.score_range())
    if low > 0:
        r = await alice.slash(channel, "review", genre="Metal", score=low / 2)
        assert r.ephemeral and "outside the range this model was trained on" in r.response.content
        simcord.assert_error(simcord_env, TagError)
    r = await alice.slash(channel, "lyrics", part="chorus", artist="Nobody Famous")
    assert r.ephemeral and "artist 'Nobody Famous' is not one this model knows" in r.response.content
    simcord.assert_error(simcord_env, TagError)


async def test_artist_autocomplete(simcord_env, server):
    _, channel, alice, _ = server
    choices = await alice.autocomplete(channel, "lyrics", "artist", "iro", part="chorus")
    assert [c["value"] for c in choices] == ["Iron Chapel"]
    assert len(await alice.autocomplete(channel, "lyrics", "artist", "", part="verse")) >= 4


async def test_reactions_count_one_vote_per_user(simcord_env, server):
    guild, channel, alice, bob = server
    carol = guild.add_member(simcord_env.create_user("carol"))
    r = await alice.slash(channel, "lyrics", part="verse")
    gid, db = footer_id(r.response), simcord_env.bot.db
    assert await db.votes(gid) == (0, 0)  # the bot's own 👍 👎 are not votes
    await alice.react(r.response, "👍")
    await alice.react(r.response, "👍")
    await bob.react(r.response, "👎")
    await carol.react(r.response, "🎸")  # not a rating emoji
    assert await db.votes(gid) == (1, 1)
    await bob.unreact(r.response, "👎")
    assert await db.votes(gid) == (1, 0)
    await bob.react(r.response, "👍")
    await alice.react(r.response, "👎")  # alice changes her mind
    assert await db.votes(gid) == (1, 1)
    await alice.unreact(r.response, "👍")  # removing the old emoji does not undo the new vote
    assert await db.votes(gid) == (1, 1)
    message = await simcord_env.bot.get_channel(channel.id).fetch_message(r.response.id)
    assert {str(x.emoji) for x in message.reactions if x.me} == {"👍", "👎"}


async def test_another_button_survives_a_restart(simcord_env, server):
    _, channel, alice, _ = server
    first = await alice.slash(channel, "review", genre="Jazz", score=3.5)
    assert first.response.components  # the 🔁 button
    await simcord_env.restart_bot()
    again = await alice.click(first.response, label="Another")
    assert again.response.embeds[0].title == "Jazz · 3.5/10"
    assert footer_id(again.response) != footer_id(first.response)


async def test_failed_send_keeps_the_cached_text_available(simcord_env, server):
    _, channel, alice, bob = server
    await fill(simcord_env, "review", {"genre": "Rock", "score": 5.0}, 1)
    key = "review|Rock|5.0"
    model = simcord_env.bot.requests.card.model_id
    assert (await simcord_env.bot.db.depth(model))[key] == 1
    simcord_env.inject_error("POST", "/interactions/*/callback", status=500)
    await alice.slash(channel, "review", genre="Rock", score=5.0)
    simcord.assert_error(simcord_env)
    assert (await simcord_env.bot.db.depth(model))[key] == 1  # not lost, not marked delivered
    r = await bob.slash(channel, "review", genre="Rock", score=5.0)
    assert r.response.embeds and callbacks(simcord_env)[-1]["type"] == 4


async def test_everyone_seed_pings_nobody(simcord_env, server):
    _, channel, alice, _ = server
    r = await alice.slash(
        channel, "lyrics", part="chorus", seed="@everyone <@123> discord.gg/abc ||spoiler||"
    )
    text = r.response.embeds[0].description
    assert "@\u200beveryone" in text and "[invite removed]" in text and "\\|\\|spoiler" in text
    assert r.response.message.mention_everyone is False
    edit = [q for q in simcord_env.http_requests if q.method == "PATCH" and q.json and "embeds" in q.json][-1]
    assert edit.json["allowed_mentions"] == {"parse": []}


async def test_show_and_stats(simcord_env, server):
    guild, channel, alice, _ = server
    r = await alice.slash(channel, "review", genre="Rap", score=9.0)
    gid = footer_id(r.response)
    show = await alice.slash(channel, "show", id=gid)
    assert show.ephemeral and f"/channels/{guild.id}/{channel.id}/{r.response.id}" in show.response.content
    missing = await alice.slash(channel, "show", id=9999)
    assert "No generation #9999 was posted in this server" in missing.response.content
    stats = await alice.slash(channel, "stats")
    fields = {f.name.split(" (")[0]: f.value for f in stats.response.embeds[0].fields}
    assert fields["Served"].startswith("1 answers") and "👍 0" in fields["Ratings"]
