"""Regenerate the README's picture of the website (``docs/web.png``) from today's code and a bot's database.

Starts ``linernotes web`` on the demo's database and checkpoint (run ``make demo`` first), opens the front
page as a desktop browser and the first generation listed there as a phone, and puts the two side by side.
Debian's chromium driven by playwright, as in tests/cli/test_web_cmd.py::

    .venv/bin/python docs/screenshot_web.py [--db .linernotes/demo/bot.sqlite3] [--checkpoint ...] [--out docs]
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / ".linernotes" / "demo"


def start(database: Path, checkpoint: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``linernotes web`` on a free port, and its address once it serves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    linernotes = Path(sys.executable).parent / "linernotes"
    cmd = [
        str(linernotes),
        "web",
        "--db",
        str(database),
        "--checkpoint",
        str(checkpoint),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if f"Serving {url}/" in log.read_text():
            return proc, url
        time.sleep(0.3)
    proc.kill()
    sys.exit(f"linernotes web did not start:\n{log.read_text()[-2000:]}")


def shoot(url: str, tmp: Path) -> tuple[Path, Path]:
    """The front page (desktop) and the first generation it lists (phone), as two pictures."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        desk = browser.new_page(viewport={"width": 900, "height": 760})
        desk.goto(url + "/")
        first = desk.locator("ul.items a").first
        expect(first).to_be_visible()
        link = first.get_attribute("href")
        desk.screenshot(path=str(tmp / "front.png"))
        phone = browser.new_page(viewport={"width": 390, "height": 760}, device_scale_factor=1)
        phone.goto(url + str(link))
        expect(phone.locator("blockquote")).to_be_visible()
        phone.screenshot(path=str(tmp / "permalink.png"))
        browser.close()
    return tmp / "permalink.png", tmp / "front.png"


def side_by_side(left: Path, right: Path, out: Path) -> None:
    """Two pictures next to each other on a light grey ground."""
    from PIL import Image

    a, b = Image.open(left), Image.open(right)
    gap = 24
    canvas = Image.new("RGB", (a.width + b.width + 3 * gap, max(a.height, b.height) + 2 * gap), "#d8d8dc")
    canvas.paste(a, (gap, gap))
    canvas.paste(b, (a.width + 2 * gap, gap))
    canvas.save(out, optimize=True)


def main() -> None:
    """Parse flags, serve a copy of the database (the site records nothing it shows here), take the picture."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--db", default=str(DEMO / "bot.sqlite3"))
    p.add_argument("--checkpoint", default=str(DEMO / "checkpoint"))
    p.add_argument("--out", default=str(REPO / "docs"), help="directory for web.png")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bot.sqlite3"
        with sqlite3.connect(args.db) as source, sqlite3.connect(copy) as target:
            source.backup(target)  # a copy: the site migrates the file it serves and writes its counts there
        proc, url = start(copy, Path(args.checkpoint), Path(tmp) / "web.log")
        try:
            left, right = shoot(url, Path(tmp))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        side_by_side(left, right, Path(args.out) / "web.png")
    print(f"wrote {Path(args.out) / 'web.png'}")


if __name__ == "__main__":
    main()
