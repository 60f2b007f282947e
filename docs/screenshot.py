"""Regenerate the README's pictures of the playground, from today's code and model.

Starts ``linernotes playground`` on the demo's checkpoint (run ``make demo`` first) and, through the page
as alice, asks for ``/review genre:Metal score:7.5`` and rates it (``docs/playground.png``); then uploads
``data/upload_sample/harbor_lights.txt`` with ``/model train``, waits for the server's model and asks it
for a chorus (``docs/playground-upload.png``). Debian's chromium driven by playwright, the same tools as
tests/cli/test_playground.py::

    .venv/bin/python docs/screenshot.py [--checkpoint .linernotes/demo/checkpoint] [--out docs]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HARBOR = REPO / "data" / "upload_sample" / "harbor_lights.txt"
URL = re.compile(r"http://127\.0\.0\.1:\d+/#\S+")


def start(checkpoint: Path, database: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """The playground process and its page address (with the session key), once it is serving.

    Its output goes to a file, not a pipe: the playground keeps printing after we stop reading."""
    linernotes = Path(sys.executable).parent / "linernotes"
    cmd = [str(linernotes), "playground", str(checkpoint), "--db", str(database), "--warm", "8"]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        if found := URL.search(log.read_text()):
            return proc, found.group(0)
        time.sleep(1)
    proc.kill()
    sys.exit(f"the playground did not print its address:\n{log.read_text()[-2000:]}")


def shoot(url: str, out: Path) -> None:
    """Run /review in the page as alice and rate it; then her upload and the server model's chorus."""
    from playwright.sync_api import expect, sync_playwright

    # The browser test's own page steps: the picture is taken along the path the test checks.
    from tests.cli.test_playground import draft, open_page, send_review, upload

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page, composer = open_page(browser, url)
        draft(page, composer, "/review")
        message = send_review(page, "Metal", "7.5", "alice")
        expect(message.locator(".embed-title")).to_have_text("Metal · 7.5/10", timeout=300_000)
        message.locator(".reaction-chip", has_text="👍").click()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "playground.png"))

        trained = upload(page, composer, HARBOR, "Harbor")
        expect(trained).to_contain_text("Harbor is ready", timeout=900_000)
        draft(page, composer, "/lyrics")
        page.locator(".command-suggestion[data-value='chorus']").click()
        page.get_by_role("button", name="Send").click()
        answer = page.locator("article.channel-message", has_text="alice used /lyrics").last
        expect(answer.locator(".embed-footer")).to_contain_text("run-fp32", timeout=300_000)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "playground-upload.png"))
        browser.close()


def main() -> None:
    """Parse flags, start the playground, take the picture, stop the playground."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=str(REPO / ".linernotes" / "demo" / "checkpoint"))
    p.add_argument("--out", default=str(REPO / "docs"), help="directory for the pictures")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))  # the browser test's page steps (tests/cli/test_playground.py)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(
            Path(args.checkpoint), Path(tmp) / "screenshot.sqlite3", Path(tmp) / "playground.log"
        )
        try:
            shoot(url, Path(args.out))
        except AssertionError:
            # The page only says "the bot action failed"; the playground's own log says why.
            print((Path(tmp) / "playground.log").read_text()[-4000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"wrote playground.png and playground-upload.png in {args.out}")


if __name__ == "__main__":
    main()
