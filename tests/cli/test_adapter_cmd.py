"""``linernotes adapter --upload``: the training child reads the upload itself, as /model train takes it,
and reports ``prepared`` (what it kept) or ``refused`` (why, in the file's terms), within a CPU-time
limit whatever the file holds; a refused upload leaves nothing behind."""

from __future__ import annotations

import json
import random
import shutil
import signal
import string

from linernotes.cli.adapter_cmd import prepare
from linernotes.cli.main import main
from tests.conftest import REPO

HARBOR = REPO / "data" / "upload_sample" / "harbor_lights.txt"


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def child(tmp_path, upload, *extra: str) -> int:
    """The child as the bot starts it (its base is never reached here)."""
    argv = [
        "adapter",
        "--upload",
        str(upload),
        "--base",
        str(tmp_path / "base"),
        "--work",
        str(tmp_path / "job"),
    ]
    return main([*argv, *extra])


def test_the_child_refuses_an_upload_it_cannot_read(tmp_path, capsys):
    upload = tmp_path / "plain.txt"
    upload.write_text("just one line")
    status = child(tmp_path, upload)
    (event,) = events(capsys.readouterr().out)
    assert status == 1 and event["event"] == "refused"
    assert event["message"].startswith("`plain.txt`: nothing in it is usable")
    assert not (tmp_path / "job" / "prepared").exists()


def test_reading_an_upload_is_bounded_in_cpu_time(tmp_path, capsys):
    # Read a small file first: the limit must stop the reading, not an import this process shares.
    shutil.copy(HARBOR, tmp_path / "warm.txt")
    prepare(tmp_path / "warm.txt", tmp_path / "warm", 30, lambda event: None)
    rng = random.Random(0)
    words = lambda: " ".join("".join(rng.choices(string.ascii_lowercase, k=5)) for _ in range(4))  # noqa: E731
    upload = tmp_path / "many.txt"
    upload.write_text("\n\n".join(f"[Verse]\n{words()}" for _ in range(4000)))  # ~3 s of CPU to prepare
    status = child(tmp_path, upload, "--prepare-cpu", "0.3")
    (event,) = events(capsys.readouterr().out)
    assert status == 1 and event == {
        "event": "refused",
        "message": "`many.txt`: reading it took too long (over 0.3 s); send fewer, longer songs",
    }
    assert not (tmp_path / "job" / "prepared").exists()
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)  # the limit ends with the reading
    assert signal.getsignal(signal.SIGPROF) in (signal.SIG_DFL, None)


def test_the_child_reports_what_it_kept(tmp_path):
    upload = tmp_path / "harbor_lights.txt"
    shutil.copy(HARBOR, upload)
    told: list[dict] = []
    out = prepare(upload, tmp_path / "prepared", 30, told.append)
    assert out == tmp_path / "prepared" and (out / "train.jsonl").is_file()
    (event,) = told
    assert event["event"] == "prepared" and event["summary"] == "kept 24 sections, dropped none"
    assert event["report"]["kept"] == 24 and event["report"]["splits"]["train"] > 0
