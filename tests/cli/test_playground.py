"""The playground as a person uses it: a headless browser runs /review, rates it, switches member.

The browser is Debian's chromium driven by playwright (which never downloads one of its own here);
without either, the browser test skips and says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from linernotes.cli.main import main

CHROMIUM = Path("/usr/bin/chromium")
HARBOR = Path(__file__).resolve().parents[2] / "data" / "upload_sample" / "harbor_lights.txt"
STARTUP_TIMEOUT = 240  # import, model load, warm-up: slow on a busy 2-core machine


def test_missing_extra_says_how_to_install(monkeypatch, capsys, tmp_path):
    import linernotes.cli.playground

    monkeypatch.setattr(
        linernotes.cli.playground, "find_spec", lambda name: None if name == "linkify_it" else True
    )
    assert main(["playground", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "linkify_it" in err and "pip install 'linernotes[playground]'" in err


def test_missing_checkpoint_is_a_clear_error(capsys, tmp_path):
    assert main(["playground", str(tmp_path / "nope")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err


def test_busy_port_is_refused_before_any_model_work(capsys, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["playground", str(tmp_path), "--port", str(port)]) == 2
    assert f"can't listen on 127.0.0.1:{port}" in capsys.readouterr().err


class Playground:
    """``linernotes playground`` in a subprocess, its stdout read line by line."""

    def __init__(self, checkpoint: Path, database: Path, port: int, stderr: Path) -> None:
        linernotes = Path(sys.executable).parent / "linernotes"
        # The tiny test model writes short texts: let the bot serve any length; a server model trains a
        # few steps (LINERNOTES_* settings, as for the real bot).
        env = {**os.environ, "LINERNOTES_MIN_CHARS": "1", "LINERNOTES_ADAPTER_STEPS": "4"}
        self.database = database
        args = ["playground", str(checkpoint), "--port", str(port), "--db", str(database), "--warm", "1"]
        self.stderr = stderr
        with stderr.open("w") as err:  # a file, not a pipe: nobody reads it while the playground runs
            self.proc = subprocess.Popen(
                [str(linernotes), *args], stdout=subprocess.PIPE, stderr=err, text=True, env=env
            )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_url(self, timeout: float) -> str:
        """The page address, printed once when the playground is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.seen.append(line)
            if line.strip().startswith("http://"):
                return line.strip()
        raise AssertionError(f"no URL; stdout: {''.join(self.seen)}\nstderr: {self.stderr_tail()}")

    def stop(self, timeout: float = 60) -> tuple[int, str]:
        """Ctrl-C, as a person would; the exit status and everything else it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.2)  # let the reader thread drain the pipe
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, "".join(self.seen)

    def stderr_tail(self) -> str:
        return self.stderr.read_text()[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the LISTEN sockets on ``port``, from the kernel's own tables."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


@pytest.fixture(scope="session")  # session: set up, and so skipped, before the session's tiny model
def chromium() -> Path:
    """Debian's chromium and playwright to drive it, or a skip saying what is missing (before any work)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (`make setup` installs it where apt-get is usable)")
    pytest.importorskip("playwright.sync_api", reason="playwright (in the dev extra) is not installed")
    return CHROMIUM


@pytest.fixture
def browser(chromium: Path) -> Iterator[object]:
    """Headless chromium under playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: chromium's sandbox refuses to run as root, as in containers and CI.
        b = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def playground(tiny_checkpoint, tmp_path) -> Iterator[Playground]:
    """A playground starting up (the test waits for its address); killed if the test did not stop it."""
    pg = Playground(tiny_checkpoint, tmp_path / "playground.sqlite3", free_port(), tmp_path / "stderr.txt")
    try:
        yield pg
    finally:
        pg.kill()


def test_review_rate_and_switch_member_in_the_page(chromium, playground, browser, tmp_path):
    from playwright.sync_api import expect

    pg = playground  # started before the browser fixture: the two start-ups overlap
    url = pg.wait_for_url(STARTUP_TIMEOUT)
    port = int(url.split(":")[2].split("/")[0])
    assert url.startswith(f"http://127.0.0.1:{port}/#") and len(url.split("#")[1]) >= 32
    # Loopback only: the one listening socket is 127.0.0.1, and another loopback address is refused.
    assert listening_addresses(port) == ["0100007F"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", port), timeout=5).close()

    page, composer = open_page(browser, url)
    # /review through the composer: the command picker, the genre picker, the score typed.
    composer.click()
    composer.type("/")
    commands = page.locator(".command-entry .command-entry-title strong")
    expect(commands).to_contain_text(["/review", "/warm"], timeout=30_000)  # alice moderates
    composer.type("review")
    page.locator(".command-entry", has_text="/review").first.click()
    message = send_review(page, "Metal", "7.5", "alice")
    expect(message.locator(".embed-title")).to_have_text("Metal · 7.5/10", timeout=60_000)
    expect(message.locator(".message-author")).to_have_text("linernotes")
    gid = int(message.locator(".embed-footer").inner_text().split()[0].lstrip("#"))
    shot = tmp_path / "playground-review.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")

    up = message.locator(".reaction-chip", has_text="👍")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true", timeout=30_000)
    # bob sees alice's vote counted but not as his own, and no moderator commands; his vote adds to it.
    page.select_option("#viewer-picker", label="bob")
    expect(page.locator("#viewer-picker")).to_have_value(str(_viewer_id(page, "bob")), timeout=30_000)
    up = page.locator("article.channel-message", has_text="alice used /review").last.locator(
        ".reaction-chip", has_text="👍"
    )
    expect(up).to_have_attribute("aria-pressed", "false", timeout=30_000)
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true", timeout=30_000)
    composer.click()
    composer.type("/")
    expect(commands.first).to_be_visible(timeout=30_000)
    assert "/review" in commands.all_inner_texts() and "/warm" not in commands.all_inner_texts()

    code, out = pg.stop()
    assert code == 0, out + pg.stderr_tail()
    assert "Stopped." in out and out.count(url) == 1  # the secret address is printed once
    assert "The bot's website and JSON API (what it wrote, with permalinks): http://127.0.0.1:" in out
    # The ratings are in the database the playground was given, as `linernotes feedback export` sees them.
    exported = tmp_path / "feedback"
    linernotes = Path(sys.executable).parent / "linernotes"
    # A subprocess: playwright's sync API keeps an event loop running in this thread.
    export = [str(linernotes), "feedback", "export", "--db", str(pg.database), "--out", str(exported)]
    subprocess.run(export, check=True, capture_output=True, timeout=120)
    rated = [json.loads(line) for line in (exported / "rated.jsonl").read_text().splitlines()]
    assert any(r["group"] == f"feedback#{gid}" and r["votes"] == {"up": 2, "down": 0} for r in rated), rated


def test_a_manager_uploads_songs_and_the_server_writes_in_their_style(chromium, playground, browser):
    from playwright.sync_api import expect

    url = playground.wait_for_url(STARTUP_TIMEOUT)
    page, composer = open_page(browser, url)
    # alice manages the server: /model train with a file chosen in the page, as from a Discord client.
    trained = upload(page, composer, HARBOR, "Harbor")
    expect(trained).to_contain_text("kept 24 sections", timeout=60_000)
    expect(trained).to_contain_text("Harbor is ready", timeout=240_000)  # the training child's run
    draft(page, composer, "/model list")
    submit(page, lambda: page.get_by_role("button", name="Send").click(timeout=5_000))
    listed = page.locator("article.channel-message", has_text="← in use").last
    expect(listed).to_contain_text("Harbor", timeout=60_000)
    model_id = listed.locator("code").last.inner_text()
    # Her next chorus comes from the server's model: its id is in the answer's footer.
    draft(page, composer, "/lyrics")
    page.locator(".command-suggestion[data-value='chorus']").click()
    submit(page, lambda: page.get_by_role("button", name="Send").click(timeout=5_000))
    answer = page.locator("article.channel-message", has_text="alice used /lyrics").last
    expect(answer.locator(".embed-footer")).to_contain_text(model_id, timeout=60_000)
    code, out = playground.stop()
    assert code == 0, out + playground.stderr_tail()


def open_page(browser, url: str) -> tuple[object, object]:
    """The playground's page open in ``browser``, and its message composer once it shows."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.goto(url)
    composer = page.locator("#channel-composer-input")
    expect(composer).to_be_visible(timeout=30_000)
    return page, composer


def draft(page, composer, command: str) -> None:
    """Pick ``command`` in the composer's command list, as typing it and clicking its entry does."""
    composer.click()
    composer.type(command)
    page.locator(".command-entry", has_text=command).first.click()


def send_review(page, genre: str, score: str, member: str):
    """With /review picked in the composer: choose ``genre``, type ``score``, send; the answer (a locator)."""
    page.locator(f".command-suggestion[data-value='{genre}']").click()
    field = page.locator("input.command-option-input[data-option='score']")
    field.click()
    field.type(score)
    submit(page, lambda: field.press("Enter", timeout=5_000))
    return page.locator("article.channel-message", has_text=f"{member} used /review").last


def submit(page, send: Callable[[], None], tries: int = 6) -> None:
    """Send the drafted command until the page takes it, as a person presses Enter again.

    The preview drops a command sent while one of its own actions (a viewport update, say) is in
    flight, and keeps the draft: the draft leaving the composer is the sign it was taken.
    """
    from playwright.sync_api import TimeoutError as PageTimeout
    from playwright.sync_api import expect

    drafting = page.get_by_role("button", name="Exit command mode")
    for _ in range(tries):
        # A field that went read-only, then left: a send still in flight took the draft.
        with contextlib.suppress(PageTimeout):
            send()
        try:
            expect(drafting).to_be_hidden(timeout=15_000)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the page never took the command ({tries} tries)")


def upload(page, composer, path: Path, name: str):
    """Run ``/model train`` with ``path`` chosen as its file; the bot's answer (a locator)."""
    draft(page, composer, "/model train")
    page.locator("input.command-file-input[data-option='file']").set_input_files(path)
    field = page.locator("input.command-option-input[data-option='name']")
    field.click()
    field.type(name)
    submit(page, lambda: field.press("Enter", timeout=5_000))
    # The answer shows "alice used /model" (the subcommand is not shown): find it by the file it names.
    return page.locator("article.channel-message", has_text=path.name).last


def _viewer_id(page, name: str) -> str:
    return page.locator("#viewer-picker option", has_text=name).get_attribute("value")
