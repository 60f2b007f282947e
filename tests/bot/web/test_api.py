"""The JSON API as a script or another bot uses it: least-shown takes counted as showings, permalinks not."""

from __future__ import annotations

import asyncio

import pytest

from linernotes.bot.web.privacy import set_published
from tests.bot.web.conftest import MODEL, add, row_of, showings


async def test_a_take_is_the_least_shown_generation_and_counts_a_showing(db, get):
    first = await add(db, "review|Metal|7.5", "A loud record.")
    await add(db, "review|Metal|7.5", "A louder record.")
    got = await get("/api/review?genre=metal&score=7.4")  # any case; the score's bucket, as the bot keys it
    assert got.status == 200 and got.headers["Cache-Control"] == "no-store"
    body = got.body
    assert set(body) >= {"id", "url", "kind", "tags", "text"}
    assert body["kind"] == "review" and body["tags"] == {"genre": "Metal", "score": 7.5}
    assert body["text"] == "A loud record." and body["model_id"] == MODEL
    assert body["url"].endswith(f"/g/{body['id']}") and len(body["id"]) == 24 and body["id"] != str(first)
    assert await showings(db) == {first: 1}
    second = (await get("/api/review?genre=Metal&score=7.5")).body
    assert second["text"] == "A louder record."  # the other one: shown less
    third = (await get("/api/review?genre=Metal&score=7.5")).body
    assert third["text"] == "A loud record."  # both seen once: the oldest again


async def test_missing_values_mean_any(db, get):
    await add(db, "review|Jazz|3.0", "Cool, then cold.")
    await add(db, "lyrics|chorus|Iron Chapel", "Iron in the rain")
    await add(db, "lyrics|verse|", "Down the street")
    await add(db, "product|5", "Works as promised.")
    assert (await get("/api/review")).body["text"] == "Cool, then cold."
    assert (await get("/api/review?score=3.2")).body["text"] == "Cool, then cold."
    assert (await get("/api/review?genre=Jazz&score=")).body["text"] == "Cool, then cold."  # empty: any
    assert (await get("/api/lyrics?part=chorus")).body["tags"] == {"part": "chorus", "artist": "Iron Chapel"}
    assert (await get("/api/lyrics?part=Verse 2")).body["text"] == "Down the street"  # a label names its part
    assert (await get("/api/lyrics?artist=iron chapel")).body["text"] == "Iron in the rain"
    assert (await get("/api/product?rating=5")).body["tags"] == {"rating": 5}


async def test_a_key_with_nothing_cached_lists_the_keys_that_exist(db, get):
    await add(db, "review|Metal|7.5", "A loud record.")
    await add(db, "review|Jazz|3.0", "Cool, then cold.")
    await add(db, "product|5", "Works as promised.")
    got = await get("/api/review?genre=Jazz&score=8")
    assert got.status == 404 and "nothing cached for review|Jazz|8.0" in got.body["error"]
    assert got.body["keys"] == [
        {
            "tags": {"genre": "Jazz", "score": 3.0},
            "generations": 1,
            "call": "/api/review?genre=Jazz&score=3.0",
        },
        {
            "tags": {"genre": "Metal", "score": 7.5},
            "generations": 1,
            "call": "/api/review?genre=Metal&score=7.5",
        },
    ]
    assert (await get(got.body["keys"][0]["call"])).status == 200  # the call listed works
    assert (await db.fetch("SELECT COUNT(*) FROM generations"))[0][0] == 3  # nothing was generated


async def test_no_generation_is_served_twice_while_unseen_ones_remain_under_concurrency(db, get):
    ids = [await add(db, "review|Metal|7.5", f"Record number {i}.") for i in range(40)]
    first = await asyncio.gather(*(get("/api/review?genre=Metal&score=7.5") for _ in range(40)))
    assert all(g.status == 200 for g in first)
    assert len({g.body["id"] for g in first}) == 40  # forty requests at once: forty different texts
    more = await asyncio.gather(*(get("/api/review?genre=Metal") for _ in range(100)))
    assert all(g.status == 200 for g in more)
    counts = await showings(db)
    assert sum(counts.values()) == 140  # every answer is one showing, no more, no less
    assert sorted(counts) == sorted(ids) and max(counts.values()) - min(counts.values()) <= 1


async def test_web_and_discord_takes_share_one_least_shown_rule(db, get):
    ids = [await add(db, "review|Metal|7.5", f"Record number {i}.") for i in range(30)]
    user = db.user_hash(7)

    async def discord(channel: int) -> int:
        gen, _ = await db.take(MODEL, "review|Metal|7.5", channel, 1, user, {})
        return gen.id

    async def web() -> int:
        return await row_of(db, (await get("/api/review?genre=Metal&score=7.5")).body["id"])

    taken = await asyncio.gather(*(discord(100 + i) if i % 2 else web() for i in range(30)))
    assert sorted(taken) == sorted(ids)  # thirty takes, both ways at once: each text once
    web_counts, discord_counts = await showings(db, "web"), await showings(db, "discord")
    assert sum(web_counts.values()) == 15 and sum(discord_counts.values()) == 15
    assert await db.depth(MODEL) == {}  # a web showing is a showing: the warm-up refills the key


async def test_a_permalink_is_not_a_showing_and_carries_its_votes(db, get):
    gid = await add(db, "review|Metal|7.5", "A loud record.")
    taken = (await get("/api/review")).body
    delivery = await db.reserve(gid, 5, 1, db.user_hash(1), {})
    await db.delivered(delivery, 555)
    await db.record_reaction(555, db.user_hash(2), 1, present=True)
    got = await get(f"/api/g/{taken['id']}")
    assert (
        got.status == 200
        and got.body["text"] == "A loud record."
        and got.body["votes"] == {"up": 1, "down": 0}
    )
    assert await showings(db) == {gid: 1}  # the take, not the permalink


@pytest.mark.parametrize(
    "setup",
    ["seed line", "headline", "unshown request", "server model", "server model, unpublished again"],
)
async def test_private_generations_are_never_served(db, get, setup):
    public = await add(db, "lyrics|chorus|", "Anyone may read this.")
    if setup == "seed line":
        hidden = await add(
            db, "lyrics|chorus|", "My own line\ngoes on", seed_line="My own line", origin="request"
        )
    elif setup == "headline":
        hidden = await add(
            db, "product|5", "Great kettle.", tags={"rating": 5, "headline": "My kettle"}, private=True
        )
    elif setup == "unshown request":  # written for an interaction that failed: never shown in Discord
        hidden = await add(db, "lyrics|chorus|", "Nobody saw this.", origin="request")
    else:
        hidden = await add(db, "lyrics|chorus|", "Written by a server's model.", model="adapter-1")
        await db.execute(
            "INSERT INTO server_models (guild_id, name, status, base_model_id, model_id, path, upload, report, "
            "created, updated) VALUES (42, 'Harbor', 'ready', ?, 'adapter-1', '/x', 'u.txt', '{}', 0, 0)",
            (MODEL,),
        )
        if setup.endswith("again"):  # its server opted in, then out: private again
            await set_published(db, 42, True)
            await set_published(db, 42, False)
    hidden_id = (await db.fetch("SELECT public_id FROM generations WHERE id = ?", (hidden,)))[0][0]
    assert (await get(f"/api/g/{hidden_id}")).status == 404
    assert (await get(f"/g/{hidden_id}")).status == 404
    answers = [await get("/api/lyrics?part=chorus") for _ in range(3)] + [await get("/api/product")]
    assert hidden not in [await row_of(db, a.body["id"]) for a in answers if a.status == 200]
    assert (await showings(db)).get(public) == 3


async def test_a_published_servers_texts_and_a_request_shown_in_discord_are_public(db, get):
    gid = await add(db, "lyrics|chorus|", "Asked for in a channel.", origin="request")
    pid = (await db.fetch("SELECT public_id FROM generations WHERE id = ?", (gid,)))[0][0]
    assert (await get(f"/api/g/{pid}")).status == 404
    await db.delivered(await db.reserve(gid, 5, 1, db.user_hash(1), {}), 777)  # posted in Discord
    await asyncio.sleep(0)
    assert (await get(f"/api/g/{pid}")).status == 200
    theirs = await add(db, "lyrics|chorus|", "A server's own song.", model="adapter-9")
    await db.execute(
        "INSERT INTO server_models (guild_id, name, status, base_model_id, model_id, path, upload, report, "
        "created, updated) VALUES (9, 'Songs', 'ready', ?, 'adapter-9', '/x', 'u.txt', '{}', 0, 0)",
        (MODEL,),
    )
    tid = (await db.fetch("SELECT public_id FROM generations WHERE id = ?", (theirs,)))[0][0]
    assert (await get(f"/api/g/{tid}")).status == 404
    await set_published(db, 9, True)
    page = await get(f"/g/{tid}")
    assert page.status == 200 and "A server&#x27;s own song." in page.body and "Songs" not in page.body


async def test_tags_are_checked_against_the_served_models_card(db, get):
    await add(db, "review|Metal|7.5", "A loud record.")
    polka = await get("/api/review?genre=Polka")
    assert (
        polka.status == 400
        and polka.body["error"] == "genre 'Polka' is not one this model knows; it knows: Metal, Jazz"
    )
    high = await get("/api/review?score=9.5")
    assert high.status == 400 and "outside the range this model was trained on (1-9)" in high.body["error"]
    assert (await get("/api/lyrics?artist=Nobody")).status == 400


@pytest.mark.parametrize("served_card", [None])
async def test_without_a_card_the_model_the_bot_recorded_is_served(db, get):
    await add(db, "review|Metal|7.5", "From the old model.", model="old")
    await add(db, "review|Metal|7.5", "From the model served now.", model="new")
    await db.set_meta("serving_model", "old")
    assert (await get("/api/review")).body["text"] == "From the old model."
    assert (await get("/api/review?genre=Polka")).status == 404  # no card: nothing cached for it, keys listed
