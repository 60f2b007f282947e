"""``linernotes adapter``: train a server's LoRA adapter over a checkpoint, as the bot's child process.

stdout carries only the job's events, one JSON object per line (see ``training/server.py``); logs go to
stderr. With ``--upload`` the child first prepares the uploaded file as the bot takes it (``/model
train``'s readers), within ``--prepare-cpu`` seconds of CPU, and reports ``prepared`` or ``refused``:
the bot process never reads an upload's content. Exit status: 0 after ``done``; 1 after an ``error`` or
``refused`` event (a problem the message names); 143 when stopped by SIGTERM; 1 when the
``--exit-with`` process is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from linernotes.common.errors import LinernotesError

# CPU seconds preparing an upload may take: a 2 MB file of real songs takes a few; 44,000 tiny unique
# sections took 82 s (their near-duplicate search), and are refused instead.
PREPARE_CPU = 30.0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``adapter`` parser."""
    p = sub.add_parser(
        "adapter",
        help="train a LoRA adapter on a prepared upload over a checkpoint; JSON-lines events on stdout",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="prepared upload (from `linernotes prepare`)")
    source.add_argument(
        "--upload",
        type=Path,
        help="a lyrics file as /model train takes it: prepared first (event prepared, or refused)",
    )
    p.add_argument("--base", required=True, type=Path, help="linernotes checkpoint the adapter is for")
    p.add_argument("--work", required=True, type=Path, help="job directory (prepared/, run/, checkpoint/)")
    p.add_argument("--max-steps", type=int, help="at most this many optimizer steps (default: the recipe's)")
    p.add_argument(
        "--prepare-cpu",
        type=float,
        default=PREPARE_CPU,
        metavar="SECONDS",
        help=f"CPU time preparing --upload may take before it is refused (default {PREPARE_CPU:g})",
    )
    p.add_argument(
        "--exit-with", type=int, metavar="PID", help="exit as soon as process PID is gone (the bot's own pid)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the job, printing its events; a user-fixable error becomes an ``error`` event and status 1."""
    from linernotes.training import server

    emit = functools.partial(write_event, sys.stdout)
    # Anything else printed on the way (a library's notice) goes to the log, not into the event stream.
    with server.sigterm_exits(), contextlib.redirect_stdout(sys.stderr):
        try:
            if args.exit_with is not None:
                server.exit_with(args.exit_with)
            data = args.data
            if args.upload is not None:
                data = prepare(args.upload, args.work / "prepared", args.prepare_cpu, emit)
                if data is None:
                    return 1
            server.train_adapter(data, args.base, args.work, args.max_steps, emit)
        except LinernotesError as e:
            emit({"event": "error", "message": str(e)})
            return 1
    return 0


def prepare(upload: Path, out: Path, cpu: float, emit: Callable[[dict[str, Any]], None]) -> Path | None:
    """Prepare an uploaded file into ``out`` as the bot takes it, within ``cpu`` seconds of CPU time;
    emits ``prepared`` (the report stored with the model, and the member's summary line) and returns
    ``out``, or emits ``refused`` (why, in the file's terms) and returns None, leaving nothing."""
    from linernotes.bot.uploads import UploadError, prepare_upload, refusal
    from linernotes.training.server import CpuLimitExceeded, cpu_limit

    try:
        with cpu_limit(cpu):
            prepared = prepare_upload(upload, out)
    except UploadError as e:
        why = str(e)
    except CpuLimitExceeded:
        why = str(
            refusal(upload.name, f"reading it took too long (over {cpu:g} s); send fewer, longer songs")
        )
    else:
        emit({"event": "prepared", "report": prepared.to_dict(), "summary": prepared.summary()})
        return prepared.path
    shutil.rmtree(out, ignore_errors=True)
    emit({"event": "refused", "message": why})
    return None


def write_event(out: TextIO, event: dict[str, Any]) -> None:
    """One event as one JSON line, flushed at once (the bot reads it as it comes)."""
    out.write(json.dumps(event, ensure_ascii=False, allow_nan=False) + "\n")
    out.flush()
