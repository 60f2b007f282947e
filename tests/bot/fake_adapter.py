"""A stand-in for the ``linernotes adapter`` child in bot tests: it speaks the job's events at once instead
of importing torch and training for half a minute, so the bot's side of a job can be tested in seconds.

Run as the bot runs the child (``--upload FILE --base B --work W --max-steps N --exit-with PID``). It
reports ``prepared``, ``start``, one ``step``, copies the real adapter named by ``FAKE_ADAPTER`` to
``W/checkpoint`` and reports ``done``. ``FAKE_HOLD=preparing`` or ``training`` makes it wait in that
state until it is stopped, as a long job would (and exit by itself after a minute, should nobody stop it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

HOLD_SECONDS = 60


def emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


def main(argv: list[str]) -> int:
    args = dict(zip(argv[::2], argv[1::2], strict=False))  # every option takes one value
    work, hold = Path(args["--work"]), os.environ.get("FAKE_HOLD", "")
    if hold == "preparing":
        time.sleep(HOLD_SECONDS)
        return 1
    report = {"kept": 3, "dropped": {}, "splits": {"train": 3, "val": 0, "test": 0}, "tokens": 30}
    emit(event="prepared", report=report, summary="kept 3 sections, dropped none")
    emit(event="start", total=1, examples=3, val_examples=0)
    emit(event="step", step=1, total=1, loss=3.0, elapsed=0.1, eta=0.0)
    if hold == "training":
        time.sleep(HOLD_SECONDS)
        return 1
    checkpoint = work / "checkpoint"
    shutil.copytree(os.environ["FAKE_ADAPTER"], checkpoint)
    card = json.loads((checkpoint / "card.json").read_text())
    emit(
        event="done", checkpoint=str(checkpoint.resolve()), model_id=card["model_id"],
        base_val_loss=None, val_loss=None, steps=1, seconds=0.1,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
