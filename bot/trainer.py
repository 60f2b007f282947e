"""One adapter training run in a child process (``linernotes adapter``), read as a stream of events.

A child process, not a thread: training can be stopped for real (a thread cannot be interrupted), a
crash or out-of-memory in training does not take the bot down, its memory is returned when it ends,
and the operating system's scheduler keeps it below people's requests (it runs at the lowest
priority, so the generation thread gets the cores whenever it has work). The child exits by itself
if the bot dies (``--exit-with``). This is a process boundary, not an import: the bot never imports
``training``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
COMMAND = (sys.executable, "-m", "linernotes", "adapter")
NICE = 19  # the lowest priority: people's requests on the generation thread come first
STOP_GRACE = 10.0  # seconds a stopped run gets to exit before it is killed


class TrainingProcess:
    """A running ``linernotes adapter`` child: its JSON-line events, its exit, and a way to stop it.

    The child is given the upload as stored: it prepares it itself (reporting ``prepared``, or
    ``refused`` with why), under a CPU-time limit, so reading a hostile file costs the bot nothing."""

    def __init__(self, upload: Path, base: Path, work: Path, max_steps: int) -> None:
        self.argv = [
            *COMMAND,
            "--upload", str(upload),
            "--base", str(base),
            "--work", str(work),
            "--max-steps", str(max_steps),
            "--exit-with", str(os.getpid()),
        ]  # fmt: skip
        self.log_file = work / "train.log"
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Spawn the child at the lowest priority, its log (stderr) going to ``train.log``."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as stderr:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv, stdout=asyncio.subprocess.PIPE, stderr=stderr, start_new_session=True
            )
        try:
            os.setpriority(os.PRIO_PROCESS, self._proc.pid, NICE)
        except OSError as e:  # a platform or sandbox that refuses: training then competes as an equal
            log.warning("could not lower the training process's priority: %s", e)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The child's events in order (one JSON object per stdout line), until it closes stdout."""
        assert self._proc is not None and self._proc.stdout is not None
        async for line in self._proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                log.info("adapter training: %s", line.decode(errors="replace").rstrip())
                continue
            if isinstance(event, dict):
                yield event

    async def wait(self) -> int:
        """The child's exit status."""
        assert self._proc is not None
        return await self._proc.wait()

    async def stop(self) -> None:
        """Stop the child's whole process group (SIGTERM, then SIGKILL after a grace period); idempotent."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE)
        except TimeoutError:
            log.warning("training process %d ignored SIGTERM; killing it", proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    def tail(self, lines: int = 20) -> str:
        """The last lines of the child's log (for the operator's log when a run fails)."""
        if not self.log_file.is_file():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
