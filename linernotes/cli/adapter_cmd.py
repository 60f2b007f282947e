"""``linernotes adapter``: train a server's LoRA adapter over a checkpoint, as the bot's child process.

stdout carries only the job's events, one JSON object per line (see ``training/server.py``); logs go to
stderr. Exit status: 0 after ``done``; 1 after an ``error`` event (a problem the message names); 143
when stopped by SIGTERM; 1 when the ``--exit-with`` process is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from linernotes.common.errors import LinernotesError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``adapter`` parser."""
    p = sub.add_parser(
        "adapter",
        help="train a LoRA adapter on a prepared upload over a checkpoint; JSON-lines events on stdout",
    )
    p.add_argument("--data", required=True, type=Path, help="prepared upload (from `linernotes prepare`)")
    p.add_argument("--base", required=True, type=Path, help="linernotes checkpoint the adapter is for")
    p.add_argument("--work", required=True, type=Path, help="job directory (prepared/, run/, checkpoint/)")
    p.add_argument("--max-steps", type=int, help="at most this many optimizer steps (default: the recipe's)")
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
            server.train_adapter(args.data, args.base, args.work, args.max_steps, emit)
        except LinernotesError as e:
            emit({"event": "error", "message": str(e)})
            return 1
    return 0


def write_event(out: TextIO, event: dict[str, Any]) -> None:
    """One event as one JSON line, flushed at once (the bot reads it as it comes)."""
    out.write(json.dumps(event, ensure_ascii=False, allow_nan=False) + "\n")
    out.flush()
