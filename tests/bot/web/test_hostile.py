"""Hostile input answers 4xx with what was wrong, never 500; nothing a visitor sends runs as markup."""

from __future__ import annotations

import asyncio
import html
import socket
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bot.web.conftest import add

BAD_PARAMS = [
    ("/api/review?score=abc", 400, "score must be a number, got 'abc'"),
    ("/api/review?score=nan", 400, "score must be between 0 and 10"),
    ("/api/review?score=1e309", 400, "score must be between 0 and 10"),
    ("/api/review?score=-1", 400, "score must be between 0 and 10"),
    ("/api/product?rating=4.5", 400, "rating must be a whole number"),
    ("/api/product?rating=9", 400, "rating must be between 1 and 5"),
    ("/api/lyrics?part=solo", 400, "part 'solo' is not one of"),
    ("/api/review?genre=Metal&genre=Jazz", 400, "parameter 'genre' is given 2 times"),
    ("/api/review?headline=mine", 400, "unknown parameter 'headline': review takes genre, score"),
    ("/api/review?genre=" + "x" * 200, 400, "genre is 200 characters long; at most 100"),
    ("/api/symphony", 404, "no such API: /api/symphony; kinds are review, product, lyrics"),
    ("/api/g/1", 404, "no public generation has the id '1'"),
    ("/api/g/" + "0" * 24, 404, "no public generation has the id"),
    ("/api/g/..%2F..%2Fetc%2Fpasswd", 404, "no public generation"),
    ("/?kind=poems", 400, "unknown kind 'poems'"),
    ("/?genre=Metal", 400, "choose a kind"),
    ("/?kind=review&score=x", 400, "score must be a number"),
    ("/api/review?" + "a=1&" * 500, 400, "the query is 2000 characters; at most 1024"),
]


@pytest.mark.parametrize(("path", "status", "says"), BAD_PARAMS)
async def test_bad_parameters_say_what_was_wrong(db, get, path, status, says):
    await add(db, "review|Metal|7.5", "A loud record.")
    got = await get(path)
    assert got.status == status
    text = got.body["error"] if isinstance(got.body, dict) else html.unescape(got.body)
    assert says in text


async def test_a_private_generations_id_answers_as_an_unknown_one(db, get):
    private = await add(db, "lyrics|chorus|", "My own line", seed_line="My own line", origin="request")
    pid = (await db.fetch("SELECT public_id FROM generations WHERE id = ?", (private,)))[0][0]
    unknown = "f" * 24
    for path in ("/api/g/{}", "/g/{}"):
        hidden, absent = await get(path.format(pid)), await get(path.format(unknown))
        assert hidden.status == absent.status == 404
        assert str(hidden.body).replace(pid, unknown) == str(absent.body)  # nothing tells them apart


async def test_generated_markup_is_shown_as_text(db, get):
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)> "quoted" & more'
    await add(db, "review|Metal|7.5", evil)
    pid = (await get("/api/review")).body["id"]
    page = (await get(f"/g/{pid}")).body
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&quot;quoted&quot; &amp; more" in page
    index = (await get("/")).body
    assert "<script>" not in index and "&lt;script&gt;" in index
    headers = (await get(f"/g/{pid}")).headers
    assert (
        "default-src 'none'" in headers["Content-Security-Policy"]
        and "script-src" not in headers["Content-Security-Policy"]
    )


async def test_a_visitors_value_in_an_error_page_is_escaped(get):
    got = await get("/?kind=" + quote("<b>bold</b>"))
    assert got.status == 400 and "<b>bold</b>" not in got.body and "&lt;b&gt;bold" in got.body


async def raw(address: str, request: bytes) -> bytes:
    """Send bytes as they are (no client normalising the path) and read the answer's status line."""
    host, port = address.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    line = await reader.readline()
    writer.close()
    return line


@pytest.mark.parametrize(
    "path",
    [
        b"/g/../../etc/passwd",
        b"/api/g/../../../etc/passwd",
        b"/g/%2e%2e/%2e%2e/etc/passwd",
        b"/site.css/../../bot.sqlite3",
        b"/..%2f..%2fbot.sqlite3",
        b"/api/review?score=1&" + b"x" * 10_000,  # a 10 kB query string
        b"/" + b"a" * 5000,
    ],
)
async def test_path_traversal_and_huge_requests_are_refused(site, db, path):
    await add(db, "review|Metal|7.5", "A loud record.")
    status = await raw(site.address, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    code = int(status.split()[1])
    assert 400 <= code < 500, status


async def test_other_methods_are_not_allowed(get, site):
    import aiohttp

    async with aiohttp.ClientSession() as s:
        async with s.post(site.address + "/api/review", data=b"x") as r:
            assert r.status == 405 and "GET" in r.headers["Allow"]
        async with s.head(site.address + "/api/review") as r:
            assert r.status == 405  # asking what a take would answer would count a showing


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["review", "product", "lyrics", "g/x", "", "stats"]),
    params=st.lists(
        st.tuples(
            st.sampled_from(["genre", "score", "rating", "part", "artist", "kind", "x"]),
            st.text(min_size=0, max_size=30),
        ),
        max_size=4,
    ),
)
async def test_no_query_ever_answers_500(get, kind, params):
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params)
    for path in (f"/api/{kind}?{query}", f"/?{query}"):
        got = await get(path)
        assert got.status < 500, (path, got.status, got.body)


def test_the_raw_helper_reads_a_status_line():
    with socket.socket() as s:  # a port nobody listens on is refused: the helper reports real answers only
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OSError):
        asyncio.run(raw(f"http://127.0.0.1:{port}", b"GET / HTTP/1.1\r\n\r\n"))
