"""The demo, driven through a pipe as a person would type: scripted part, then interactive commands."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from linernotes.bot.copy import copy_store
from linernotes.cli.chat import parse_line
from linernotes.cli.main import main
from tests.postgres import why_not

TYPED = """\
help
/review genre:Metal score:2.0
/lyrics part:verse seed:"a line of my own"
/review genre:Polka score:3
/review genre:Jazz score:12
/review genre:Jazz
/lyrics part:verse artist:Nobody
/nope
react 👍 abc
react 👍 99999
as carol /stats
as bob /stats
quit
"""


@pytest.fixture
def run_demo(monkeypatch, capsys):
    """Run ``linernotes demo`` in this process, with ``stdin`` typed into it; returns (exit code, stdout)."""
    # The tiny test model writes short texts: let the bot serve any length (a LINERNOTES_* bot setting).
    monkeypatch.setenv("LINERNOTES_MIN_CHARS", "1")
    monkeypatch.setenv("LINERNOTES_ADAPTER_STEPS", "4")  # the server model's training: seconds, not minutes
    # The demo quiets library loggers for its own narration; give other tests their levels back.
    names = ("linernotes", "bot", "model", "training", "data", "apscheduler", "simcord", "discord")
    for name in names:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.getLogger(name).level)

    def run(home: Path, *args: str, stdin: str = "") -> tuple[int, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["demo", "--home", str(home), *args])
        return code, capsys.readouterr().out

    return run


def test_demo_session_through_a_pipe(tiny_checkpoint, sample_data, tmp_path, run_demo, request):
    home = tmp_path / "demo"
    shutil.copytree(tiny_checkpoint, home / "checkpoint")  # an earlier run's model: reused, not retrained
    shutil.copytree(sample_data, home / "prepared")
    code, out = run_demo(home, "--interactive", stdin=TYPED)
    assert code == 0
    assert "Using the model trained on an earlier run" in out
    assert "alice › /review genre:Metal score:9.0" in out and "bob › /review genre:Metal score:2.0" in out
    assert "alice › /product rating:5" in out and "bob › /product rating:1" in out
    assert "deferred at once" in out  # a miss, acknowledged before it was written
    # The warm-up filled the keys the script asks for: those answers come from the cache.
    assert "Warm-up: 8 new generations stored for the keys this session asks for, then" in out
    for command in CACHED:
        assert from_cache(out, command), command
    assert "reacted 👍 to #" in out and "reacted 👎 to #" in out
    # The site beside the bot: the first review's permalink, and the API call for its key, answered.
    web = out.split("On the web, while the bot runs")[1].split("\n\n")[0]
    assert re.search(r"#\d+'s permalink: http://127\.0\.0\.1:\d+/g/[0-9a-f]{24}\n", web), web
    assert re.search(
        r"curl 'http://127\.0\.0\.1:\d+/api/review\?genre=Metal&score=9\.0'  ->  200, [0-9a-f]{24}: ", web
    )
    assert "linernotes web --db" in out
    assert "linernotes stats" in out and "Ratings: 👍 4 · 👎 1" in out
    # A manager uploads songs; the server's own model trains and then writes its chorus.
    assert "carol › /model train name:Harbor file:harbor_lights.txt" in out
    assert (
        "📥 **Harbor** from `harbor_lights.txt`: kept 24 sections" in out and "✅ **Harbor** is ready" in out
    )
    trained = (home / "server-models").rglob("checkpoint/card.json")
    (adapter,) = [json.loads(card.read_text())["model_id"] for card in trained]
    chorus = out.split("carol › /lyrics part:chorus")[1].split("alice ›")[0]
    assert f"· {adapter} ·" in chorus  # the footer names the model that wrote it: the server's
    # Interactive part: the same answers and refusals the real bot and Discord client give.
    assert 'alice › /lyrics part:verse seed:"a line of my own"' in out
    assert "Discord won't send that: Option 'genre' of 'review' only allows" in out
    assert out.count("Discord won't send that") >= 3  # unknown genre, out of range, missing score
    assert "artist 'Nobody' is not one this model knows" in out and "only you can see this" in out
    assert "Unknown command /nope" in out
    assert "react needs a generation number" in out and "#99999 was not posted" in out
    assert "no member 'carol'" in out and "bob › /stats" in out
    assert "Ratings landed in" in out and "linernotes feedback export --db" in out
    assert (home / "feedback" / "rated.jsonl").is_file()
    code, again = run_demo(home)  # a second run reuses model, database and the server's model
    assert code == 0 and "Using the model trained on an earlier run" in again
    assert "carol uploaded harbor_lights.txt on an earlier run" in again and "/model train" not in again
    # It topped up only its script's keys (the ones the first run served, and the server model's chorus)
    # and every one of them is answered from the cache again, carol's chorus too.
    assert re.search(r"Warm-up: \d+ new generations stored for the keys this session asks for, in", again)
    for command in [*CACHED, "carol › /lyrics part:chorus"]:
        assert from_cache(again, command), command
    # bob's review is the script's miss on every run: 2.0, or the nearest Metal score nothing answers yet.
    bob = again.split("bob › /review genre:Metal score:")[1].split("\n")
    assert float(bob[0]) <= 3.5 and "deferred at once" in bob[1]
    # The demo's store moves to PostgreSQL with every row (where a server can start here: see tests/postgres.py).
    if why_not() is None:
        copied = asyncio.run(copy_store(f"sqlite:{home / 'bot.sqlite3'}", postgres_url(request)))
        with sqlite3.connect(home / "bot.sqlite3") as con:
            counts = {
                table: con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in copied.rows
            }
        assert copied.rows == counts and counts["server_models"] == 1 and counts["ratings"] >= 5


CACHED = ["alice › /review genre:Metal score:9.0", "alice › /product rating:5", "bob › /product rating:1"]


def from_cache(out: str, command: str) -> bool:
    """Whether the bot answered ``command`` at once, without deferring (a cache hit)."""
    answer = out.split(f"{command}\n")[1].split("\n")[0]
    return answer.startswith("linernotes › (answered in") and "deferred" not in answer


def test_typed_lines_parse():
    typed = parse_line('as bob /lyrics part:chorus seed:"two words" artist:"Iron Chapel"')
    assert (typed.member, typed.verb, typed.name) == ("bob", "slash", "lyrics")
    assert typed.options == {"part": "chorus", "seed": "two words", "artist": "Iron Chapel"}
    assert parse_line("react 👎 12").args == ["👎", "12"]
    assert parse_line("quit").verb == "quit" and parse_line("   ") is None


def postgres_url(request: pytest.FixtureRequest) -> str:
    """An empty schema on the session's PostgreSQL server."""
    return request.getfixturevalue("postgres").new_schema("demo_copy")
