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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from linernotes.common.errors import LinernotesError
from linernotes.common.flags import add_flags, flag

# CPU seconds preparing an upload may take: a 2 MB file of real songs takes a few; 44,000 tiny unique
# sections took 82 s (their near-duplicate search), and are refused instead.
PREPARE_CPU = 30.0


# kw_only: the two alternative sources (each defaulting to None) come first, as in --help, before the
# required fields.
@dataclass(frozen=True, kw_only=True)
class AdapterArgs:
    """What ``linernotes adapter`` takes: the examples (prepared, or an upload to prepare), base and job."""

    data: Path | None = field(
        default=None, metadata=flag("prepared upload (from `linernotes prepare`)", one_of="source")
    )
    upload: Path | None = field(
        default=None,
        metadata=flag(
            "a lyrics file as /model train takes it: prepared first (event prepared, or refused)",
            one_of="source",
        ),
    )
    base: Path = field(metadata=flag("linernotes checkpoint the adapter is for"))
    work: Path = field(metadata=flag("job directory (prepared/, run/, checkpoint/)"))
    max_steps: int | None = field(
        default=None, metadata=flag("at most this many optimizer steps (default: the recipe's)")
    )
    prepare_cpu: float = field(
        default=PREPARE_CPU,
        metadata=flag("CPU time preparing --upload may take before it is refused", metavar="SECONDS"),
    )
    exit_with: int | None = field(
        default=None,
        metadata=flag("exit as soon as process PID is gone (the bot's own pid)", metavar="PID"),
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``adapter`` parser."""
    p = sub.add_parser(
        "adapter",
        help="train a LoRA adapter on a prepared upload over a checkpoint; JSON-lines events on stdout",
    )
    add_flags(p, AdapterArgs)
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
