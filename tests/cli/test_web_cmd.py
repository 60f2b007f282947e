"""``linernotes web`` as an operator runs it, and the site as a person uses it in Chromium: the front page,
a permalink followed, its text and rating."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from linernotes.bot.storage import Database
from linernotes.cli.main import main
from tests.bot.web.conftest import add, card
from tests.cli.test_playground import free_port

STARTUP_TIMEOUT = 120


def test_a_missing_database_is_refused(tmp_path, capsys):
    assert main(["web", "--db", str(tmp_path / "nope.sqlite3")]) == 2
    assert "no such database" in capsys.readouterr().err


def test_a_missing_checkpoint_is_refused(tmp_path, capsys):
    assert main(["web", "--db", str(tmp_path / "x"), "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err


def test_bad_settings_are_refused(tmp_path, capsys):
    assert main(["web", "--db", str(tmp_path / "x"), "--url", "ftp://example.org"]) == 2
    assert "web url must be an http(s) address" in capsys.readouterr().err


def test_a_busy_port_is_refused(tmp_path, capsys):
    build(tmp_path / "bot.sqlite3")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["web", "--db", str(tmp_path / "bot.sqlite3"), "--port", str(port)]) == 2
    assert f"can't listen on 127.0.0.1:{port}" in capsys.readouterr().err


async def _database(path: Path) -> dict[str, str]:
    """A bot's database with a rated review, a chorus and a private text; their public ids by name."""
    db = Database(path)
    await db.open()
    try:
        loved = await add(db, "review|Metal|7.5", "Riffs like a freight train,\nand a chorus that stays.")
        await db.delivered(await db.reserve(loved, 5, 1, db.user_hash(1), {}), 4242)
        for user, vote in ((1, 1), (2, 1), (3, -1)):
            await db.record_reaction(4242, db.user_hash(user), vote, present=True)
        chorus = await add(db, "lyrics|chorus|", "Harbor lights are calling")
        mine = await add(
            db, "lyrics|chorus|", "My own line goes on", seed_line="My own line", origin="request"
        )
        await db.set_meta("serving_model", card().model_id)
        names = {"loved": loved, "chorus": chorus, "mine": mine}
        return {
            n: (await db.fetch("SELECT public_id FROM generations WHERE id = ?", (i,)))[0][0]
            for n, i in names.items()
        }
    finally:
        await db.close()


class Web:
    """``linernotes web`` in a subprocess; its banner read from stdout."""

    def __init__(self, database: Path, port: int, log: Path) -> None:
        linernotes = Path(sys.executable).parent / "linernotes"
        env = {**os.environ, "LINERNOTES_STATS_TOKEN": "t0ken"}
        cmd = [str(linernotes), "web", "--db", str(database), "--port", str(port)]
        self.log = log
        self.proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True, env=env)
        self.url = f"http://127.0.0.1:{port}"

    def wait(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            if f"Serving {self.url}/" in self.log.read_text():
                return self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"no banner: {self.log.read_text()}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=60)


def build(path: Path) -> dict[str, str]:
    """``_database`` from synchronous code, even where playwright's own event loop runs in this thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _database(path)).result()


@pytest.fixture
def web(tmp_path):
    public = build(tmp_path / "bot.sqlite3")
    site = Web(tmp_path / "bot.sqlite3", free_port(), tmp_path / "web.log")
    try:
        yield site, public
    finally:
        if site.proc.poll() is None:
            site.proc.kill()
            site.proc.wait(timeout=30)


def fetch(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_command_serves_the_api_from_the_bots_database(web):
    site, public = web
    banner = site.wait()
    assert "operator view" in banner and ": on" in banner and "t0ken" not in banner
    status, body = fetch(f"{site.url}/api/lyrics?part=chorus")
    assert status == 200 and body["id"] == public["chorus"] and body["text"] == "Harbor lights are calling"
    assert fetch(f"{site.url}/api/g/{public['mine']}")[0] == 404  # someone's own line stays theirs
    status, body = fetch(f"{site.url}/api/product")
    assert status == 404 and body["keys"] == []
    assert site.stop() == 0 and "Stopped." in site.log.read_text()


def test_a_person_browses_follows_a_permalink_and_sees_the_text_and_rating(chromium, browser, web, tmp_path):
    from playwright.sync_api import expect

    site, public = web
    site.wait()
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone's screen
    page.goto(site.url + "/")
    top = page.locator("h2", has_text="Top rated").locator("xpath=following-sibling::ul[1]")
    expect(top.locator("li")).to_have_count(1)
    top.locator("a", has_text="Metal · 7.5/10").click()
    expect(page).to_have_url(f"{site.url}/g/{public['loved']}")
    expect(page.locator("blockquote")).to_have_text("Riffs like a freight train,\nand a chorus that stays.")
    expect(page.locator(".rating .up")).to_have_text("2")
    expect(page.locator(".rating .down")).to_have_text("1")
    expect(page.locator("h1")).to_have_text("Metal · 7.5/10")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone: no sideways scrolling
    shot = tmp_path / "web-permalink.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    page.locator("a", has_text="More like this").click()
    expect(page.locator("h1")).to_have_text("Album reviews · Metal · 7.5")
    assert site.stop() == 0
