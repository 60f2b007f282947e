"""The pages as people see them: browse, permalinks with link previews, and the operator view."""

from __future__ import annotations

import base64
import html
import re

import pytest

from linernotes.model.config import Sampling
from linernotes.model.generator import Request, Result
from tests.bot.web.conftest import MODEL, add


async def rate(db, gid: int, message: int, votes: list[int]) -> None:
    """Post a generation in Discord (message ``message``) and have people vote on it."""
    await db.delivered(await db.reserve(gid, 5, 1, db.user_hash(1), {}), message)
    for user, vote in enumerate(votes):
        await db.record_reaction(message, db.user_hash(100 + user), vote, present=True)


async def test_the_front_page_shows_the_top_rated_and_the_newest(db, get):
    loved = await add(db, "review|Metal|7.5", "Loved by everyone.")
    await add(db, "review|Jazz|3.0", "Cool, then cold.")
    await add(db, "lyrics|chorus|", "A chorus nobody rated.")
    await rate(db, loved, 901, [1, 1, -1])
    page = html.unescape((await get("/")).body)
    top, newest = page.split("<h2>Top rated</h2>")[1].split("<h2>Newest</h2>")
    assert "Loved by everyone." in top and "Cool, then cold." not in top and "2 up · 1 down" in top
    assert newest.index("A chorus nobody rated.") < newest.index("Cool, then cold.") < newest.index("Loved")
    assert 'name="viewport"' in page and "<script" not in page
    assert re.findall(r'href="(/\?kind=\w+)"', page) == ["/?kind=review", "/?kind=lyrics"]  # kinds with texts


async def test_browsing_by_kind_and_tag(db, get):
    await add(db, "review|Metal|7.5", "Loud at 7.5.")
    await add(db, "review|Metal|2.0", "Loud at 2.")
    await add(db, "review|Jazz|3.0", "Cool, then cold.")
    page = html.unescape((await get("/?kind=review&genre=metal")).body)
    assert "Loud at 7.5." in page and "Loud at 2." in page and "Cool, then cold." not in page
    assert '<option value="Metal" selected>' in page and '<option value="Jazz">' in page  # a plain form
    assert '<option value="2.0">' in page and '<option value="7.5">' in page
    scored = html.unescape((await get("/?kind=review&genre=Metal&score=7.6")).body)
    assert "Loud at 7.5." in scored and "Loud at 2." not in scored


async def test_a_permalink_page_has_the_text_tags_model_votes_date_and_a_preview(db, get):
    gid = await add(db, "review|Metal|7.5", "A loud record,\nand a second line.")
    await rate(db, gid, 987654321987, [1, -1, -1])  # a message id no page may show
    pid = (await db.fetch("SELECT public_id FROM generations WHERE id = ?", (gid,)))[0][0]
    got = await get(f"/g/{pid}")
    assert got.status == 200 and got.headers["Content-Type"].startswith("text/html")
    page = html.unescape(got.body)
    assert "<h1>Metal · 7.5/10</h1>" in page and "genre: Metal" in page and "score: 7.5" in page
    assert "A loud record,\nand a second line." in page  # line breaks kept (pre-wrap)
    assert f"<code>{MODEL}</code>" in page and re.search(
        r"on <time>\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>", page
    )
    assert 'Rated <span class="up">1</span> up · <span class="down">2</span> down' in page
    assert '<meta property="og:title" content="Metal · 7.5/10">' in page
    assert '<meta property="og:description" content="A loud record, and a second line.">' in page
    assert f'<meta property="og:url" content="{(await get("/api/g/" + pid)).body["url"]}">' in page
    assert '<meta name="twitter:card" content="summary">' in page
    # The row id is never a link (a public id may begin with its digits: the whole id is looked for).
    assert "987654321987" not in page and not re.search(rf"/g/{gid}(?![0-9a-f])", page)


@pytest.mark.parametrize("web_settings", [{"port": 0, "rate": 0, "url": "https://notes.example.org/"}])
async def test_links_use_the_public_base_url(db, get):
    await add(db, "product|5", "Works as promised.")
    body = (await get("/api/product?rating=5")).body
    assert body["url"] == f"https://notes.example.org/g/{body['id']}"
    page = (await get(f"/g/{body['id']}")).body
    assert f'content="https://notes.example.org/g/{body["id"]}"' in page


@pytest.fixture
def token(monkeypatch) -> str:
    monkeypatch.setenv("LINERNOTES_STATS_TOKEN", "s3cret-operator-token")
    return "s3cret-operator-token"


async def test_the_operator_view_is_off_without_a_token(get):
    got = await get("/stats")
    assert got.status == 403 and "no token is set" in got.body
    assert (await get("/api/stats")).status == 403


async def test_the_operator_view_needs_the_token(token, get):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!notbase64"}):
        got = await get("/stats", headers=headers)
        assert got.status == 401 and got.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert token not in str(got.body)
    basic = base64.b64encode(f"operator:{token}".encode()).decode()
    assert (await get("/stats", headers={"Authorization": f"Basic {basic}"})).status == 200
    assert (await get("/api/stats", headers={"Authorization": f"Bearer {token}"})).status == 200


async def test_the_operator_view_shows_requests_depth_approval_and_cost(token, db, site, get):
    rated = await add(db, "review|Metal|7.5", "Loved.")
    await add(db, "review|Metal|7.5", "Not shown yet.")
    await add(db, "review|Jazz|3.0", "Cool.")
    await rate(db, rated, 903, [1, 1, -1])
    await db.note_demand("review|Metal|7.5")  # a Discord request
    request = Request("review", {"genre": "Metal", "score": 7.5}, sampling=Sampling(seed=1))
    await db.note_cost(
        [
            Result(request, "x", True, 1, "end", 30, 2.0, MODEL),
            Result(request, "", False, 2, "length", 10, 2.0, MODEL),
        ]
    )
    for _ in range(2):
        assert (await get("/api/review?genre=Jazz")).status == 200
    await site.context.store.flush_counts(force=True)
    auth = {"Authorization": f"Bearer {token}"}
    figures = (await get("/api/stats", headers=auth)).body
    requests = {(r["source"], r["key"]): r["requests"] for r in figures["requests"]}
    assert requests == {("discord", "review|Metal|7.5"): 1, ("web", "review|Jazz|*"): 2}
    assert figures["depth"] == {"review|Metal|7.5": 1}  # Jazz was shown on the web; the rated one in Discord
    assert {"kind": "review", "tag": "genre", "value": "Metal", "up": 2, "down": 1} in figures["approval"]
    cost = figures["costs"][MODEL]
    assert cost["training"] == {"steps": 43, "tokens": 42823, "seconds": 919.2, "cpu_s": 1701.5, "gpu_s": 0.0}
    assert cost["generation"] == {"texts": 1, "failed": 1, "tokens": 40, "seconds": 2.0}
    assert figures["showings"] == {"discord": 1, "web": 2}
    page = html.unescape((await get("/stats", headers=auth)).body)
    assert page.count('src="data:image/svg+xml;base64,') == 3  # requests over time, depth, approval
    assert "1,701.5" in page and "42,823" in page and "Listening" not in page
    svg = base64.b64decode(re.search(r"base64,([^\"]+)", page).group(1)).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
