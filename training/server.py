"""A Discord server's own LoRA adapter, trained as a job the bot runs in a child process.

``train_adapter`` trains the ``server`` recipe on a prepared upload (the bot's child prepares it first,
``linernotes adapter --upload``), over the bot's serving checkpoint, through the one pipeline (``training.pipeline.build``), and exports the adapter
unmerged (fp32, a few MB). It reports through ``on_event``; ``linernotes adapter`` prints those events
as JSON lines for the bot. The bot never imports this module: it only reads the events.

Events, in order (``linernotes adapter --upload`` first prepares the uploaded file, as the bot takes it,
and reports ``{"event": "prepared", "report": {...}, "summary": text}`` or, ending there,
``{"event": "refused", "message": why}``):

- ``{"event": "start", "total": T, "examples": n, "val_examples": m}`` once the data is tokenized;
  ``val_examples`` 0 means the upload has no validation split: both losses in ``done`` are then null;
- ``{"event": "step", "step": s, "total": T, "loss": x, "elapsed": sec, "eta": sec}`` after each step;
- ``{"event": "done", "checkpoint": path, "model_id": id, "base_val_loss": x, "val_loss": y,
  "steps": n, "seconds": t, "tokens": n, "cpu_s": t, "gpu_s": t}`` once the adapter checkpoint is in
  place under its final name and has passed the check the bot applies to every adapter
  (``check_output``); tokens trained on and the CPU and GPU seconds training took are what it cost.

Stopping: ``sigterm_exits`` makes SIGTERM end the job at once (``SystemExit``); the checkpoint is only
ever renamed into place complete, and a job stopped before ``done`` removes it, so a stopped job never
leaves a checkpoint under the final name. ``exit_with`` ends the process when the bot is gone.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linernotes.common.errors import AdapterError, CheckpointError, ConfigError, InputError
from linernotes.model.adapters import check_adapter
from linernotes.model.card import read_card
from linernotes.model.checkpoint import is_checkpoint
from linernotes.training.pipeline import RECIPES, build

if TYPE_CHECKING:  # the training loop imports torch: only when a job runs
    from linernotes.training.loop import Plan
    from linernotes.training.state import Progress

log = logging.getLogger(__name__)
RECIPE = "server"
# The share of the base's layers (the top ones) the server recipe puts LoRA on; the frozen ones below are
# computed once per upload section (training/frozen.py). Why: ``upper_layers``.
LORA_SHARE = 0.5
Event = dict[str, Any]
EXIT_TERMINATED = 128 + signal.SIGTERM  # the shell's convention for "ended by SIGTERM"
EXIT_ORPHANED = 1


class _Reporter:
    """Turns the training loop's hooks into events, with elapsed time and a remaining-time estimate."""

    def __init__(self, on_event: Callable[[Event], None]) -> None:
        self.on_event = on_event
        self.started = time.monotonic()
        self.training_started = self.started
        self.total = 0

    def start(self, plan: Plan) -> None:
        """The loop's ``on_start`` hook."""
        self.total, self.training_started = plan.total, time.monotonic()
        if not plan.val_examples:
            log.warning("the upload has no validation split: the adapter is not compared with the base")
        self.on_event(
            {
                "event": "start",
                "total": plan.total,
                "examples": plan.examples,
                "val_examples": plan.val_examples,
            }
        )

    def step(self, progress: Progress, loss: float) -> None:
        """The loop's ``on_step`` hook."""
        now = time.monotonic()
        per_step = (now - self.training_started) / progress.step
        self.on_event(
            {
                "event": "step",
                "step": progress.step,
                "total": self.total,
                "loss": _number(loss),
                "elapsed": round(now - self.started, 1),
                "eta": round(per_step * (self.total - progress.step), 1),
            }
        )

    def seconds(self) -> float:
        """Time since the job started."""
        return round(time.monotonic() - self.started, 1)


def train_adapter(
    prepared: Path,
    base: Path,
    work: Path,
    max_steps: int | None,
    on_event: Callable[[Event], None],
    **overrides: Any,
) -> Event:
    """Train the ``server`` recipe's LoRA adapter on the prepared upload ``prepared`` over the linernotes
    checkpoint ``base``, in ``work``, for the recipe's epochs but at most ``max_steps`` steps (None: the
    recipe's cap); ``overrides`` replace recipe settings (a benchmark's sweep). Returns the ``done`` event."""
    base, work = Path(base).resolve(), Path(work)
    check_base(base)
    stage(Path(prepared), work / "prepared")
    checkpoint = work / "checkpoint"
    shutil.rmtree(checkpoint, ignore_errors=True)  # an earlier job's: this job's "done" names its own
    cap = RECIPES[RECIPE]["max_steps"] if max_steps is None else max_steps
    overrides = {**upper_layers(read_card(base).architecture), **overrides}
    reporter = _Reporter(on_event)
    reported = False
    try:
        built = build(
            [work / "prepared"], work, RECIPE, precision="fp32", say=log.info,
            on_start=reporter.start, on_step=reporter.step, base=str(base), max_steps=cap, **overrides,
        )  # fmt: skip
        check_output(built.checkpoint, base)
        done = done_event(built.checkpoint, built.card.model_id, built.summary, reporter.seconds())
        reported = True  # before telling: once "done" may have been read, the checkpoint must stay
        on_event(done)
    finally:
        if not reported:  # stopped (SIGTERM) or failed before "done": leave no checkpoint behind
            shutil.rmtree(checkpoint, ignore_errors=True)
    return done


def upper_layers(architecture: dict[str, Any]) -> dict[str, Any]:
    """The server recipe's LoRA layers for a base of this card architecture: the top ``LORA_SHARE``,
    the layers below cached (on a base that cannot start from a cache, the loop trains uncached).

    bench/server_models.py --sweep (2026-12-06, each upload trained every way in turn): LoRA on the top
    15 of the 135M base's 30 layers ranked its own artist first on 74% of held-out sections, every layer
    on 73%, and trained in 0.59x the time (134-169 s against 216-330 s); the cache took that to 0.85x
    (128-152 s against 147-179 s), the same computation. Upload to first answer 0.59x (151-200 s against
    221-283 s on one slow machine); the adapters are half the size (4.9 MB).
    """
    total = architecture.get("num_hidden_layers") or architecture.get("n_layer")
    if not total:
        return {}
    return {"lora_layers": math.ceil(total * LORA_SHARE), "cache_frozen": True}


def check_base(base: Path) -> None:
    """Refuse a base that is not a whole-model linernotes checkpoint, before any loading."""
    if not is_checkpoint(base):
        raise CheckpointError(f"--base {base}: not a linernotes checkpoint directory (no card.json)")


def check_output(checkpoint: Path, base: Path) -> None:
    """Refuse to report an adapter the bot would refuse to serve: the check ``models add`` and the bot's
    start-up apply, so nothing broken is ever registered ready."""
    try:
        check_adapter(checkpoint, read_card(base), base)
    except AdapterError as e:  # the member who uploaded reads this: the reason, never the work folder
        raise CheckpointError(f"the trained adapter cannot be served: {e.reason}") from None


def stage(prepared: Path, into: Path) -> None:
    """Put the prepared upload at ``into`` (``work/prepared``), where the pipeline reuses prepared splits
    instead of preparing sources; the bot usually prepares it there already."""
    if not ((prepared / "train.jsonl").is_file() and (prepared / "stats.json").is_file()):
        raise InputError(f"--data {prepared}: not a prepared directory (run `linernotes prepare` first)")
    if into.exists() and into.resolve() == prepared.resolve():
        return
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(prepared, into)


def done_event(checkpoint: Path, model_id: str, summary: dict[str, Any], seconds: float) -> Event:
    """The ``done`` event of a finished job."""
    return {
        "event": "done",
        "checkpoint": str(Path(checkpoint).resolve()),
        "model_id": model_id,
        "base_val_loss": _number(summary.get("start_val_loss")),
        "val_loss": _number(summary.get("best_val_loss")),
        "steps": summary["steps"],
        "seconds": seconds,
        "tokens": summary.get("tokens"),
        "cpu_s": summary.get("cpu_s"),
        "gpu_s": summary.get("gpu_s"),
    }


def _number(value: float | None) -> float | None:
    """A loss as JSON can carry it: rounded, and null when missing or not finite (JSON has no NaN)."""
    return round(value, 4) if value is not None and math.isfinite(value) else None


class CpuLimitExceeded(BaseException):
    """The work inside ``cpu_limit`` used up its CPU time. A BaseException, as KeyboardInterrupt is: it can
    strike anywhere, and a library's ``except Exception`` must not swallow it (or turn it into another)."""


@contextlib.contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """While inside, once this process has used ``seconds`` more of CPU time (all threads), raise
    ``CpuLimitExceeded`` in the main thread: a hard bound on work whose cost its input decides (reading
    an upload). CPU time, not wall time: a job at the lowest priority may wait long for a core."""

    def stop(signum: int, frame: Any) -> None:
        raise CpuLimitExceeded(f"over {seconds:g} s of CPU time")

    previous = signal.signal(signal.SIGPROF, stop)
    # Then again every 50 ms of CPU: a raise that lands in a finalizer or a weakref callback is printed and
    # dropped by Python, so the limit keeps striking until one reaches the work itself.
    signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """While inside, SIGTERM raises ``SystemExit`` in the main thread: the job stops at once and cleans up
    on its way out (temporary directories, an unreported checkpoint)."""

    def stop(signum: int, frame: Any) -> None:
        log.warning("stopped (SIGTERM)")
        raise SystemExit(EXIT_TERMINATED)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_with(pid: int, interval: float = 1.0, on_gone: Callable[[], None] | None = None) -> threading.Thread:
    """Watch process ``pid`` from a daemon thread and end this process (``os._exit``) when it is gone, so
    a bot that was killed leaves no training behind; ``on_gone`` replaces the exit (tests)."""
    if not _exists(pid):
        raise ConfigError(f"--exit-with {pid}: no such process")
    # Our parent: watch for re-parenting, which cannot be fooled by the pid being reused.
    parent = os.getppid() == pid

    def watch() -> None:
        while (os.getppid() == pid) if parent else _exists(pid):
            time.sleep(interval)
        log.warning("process %d is gone; stopping", pid)
        (on_gone or _exit_now)()

    thread = threading.Thread(target=watch, name=f"exit-with-{pid}", daemon=True)
    thread.start()
    return thread


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _exit_now() -> None:
    os._exit(EXIT_ORPHANED)
