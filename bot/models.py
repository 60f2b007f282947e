"""Server models: a server uploads lyrics, an adapter trains in the background, and that server's
requests are written by it.

``ServerModels`` is the service behind ``/model`` and the router the request handler asks which model
answers a server. Jobs run one at a time in a child process (``bot.trainer``), in the order they
were asked for; a server has at most one job at a time. A finished adapter is attached to the one
generator on the worker thread and registered in one write; generations are keyed by the adapter's
own model id, so no server is ever served another's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.bot.config import BotConfig, sampling_for
from linernotes.bot.registry import ModelError, ModelRegistry, ServerModel
from linernotes.bot.trainer import TrainingProcess
from linernotes.bot.uploads import Prepared, check_upload, prepare_upload, store_upload
from linernotes.common.errors import LinernotesError
from linernotes.model.card import Card
from linernotes.model.generator import Request
from linernotes.model.worker import INTERACTIVE, GenerationWorker

log = logging.getLogger(__name__)
Notify = Callable[[str], Awaitable[None]]
NAME_MAX = 32
INTERRUPTED = "stopped: the bot restarted before training finished; run /model train again"
PROGRESS_EVERY = 5.0  # seconds between progress edits (Discord rate-limits message edits)
CHECKPOINT = "checkpoint"  # the adapter checkpoint inside a model's directory


@dataclass(frozen=True)
class Route:
    """Which model answers a request: an attached adapter's name (None: the bot's own) and its card."""

    adapter: str | None
    card: Card


@dataclass
class Job:
    """A queued or running training job, and how to tell the member who asked."""

    model: ServerModel
    notify: Notify
    process: TrainingProcess | None = None
    cancelled: bool = False
    last_note: float = field(default=0.0)


def models_root(config: BotConfig) -> Path:
    """Where server models' files live: ``models_dir``, else server-models/ beside the database."""
    return Path(config.models_dir or Path(config.database).resolve().parent / "server-models")


def new_folder(root: Path, guild_id: int) -> Path:
    """A fresh directory for one server model (its upload, run and adapter ``CHECKPOINT``)."""
    return root / str(guild_id) / uuid.uuid4().hex[:12]


def check_name(name: str) -> str:
    """A model name as stored, or a ModelError saying what names may be."""
    name = name.strip()
    if not (0 < len(name) <= NAME_MAX) or not all(c.isalnum() or c in " _-" for c in name):
        raise ModelError(f"A model name is 1-{NAME_MAX} letters, digits, spaces, '-' or '_'; got {name!r}.")
    if name.casefold() == "default":
        raise ModelError("'default' means the bot's own model; choose another name.")
    return name


class ServerModels:
    """Each server's models: upload and train, use, list, delete, cancel; and routing requests."""

    def __init__(self, config: BotConfig, registry: ModelRegistry, worker: GenerationWorker) -> None:
        self.config, self.registry, self.worker = config, registry, worker
        self.root = models_root(config)
        self._queue: list[Job] = []
        self._running: Job | None = None
        self._task: asyncio.Task | None = None
        self._cards: dict[str, Card] = {}  # attached adapter name -> its card
        self._active: dict[int, str] = {}  # server id -> the adapter name it uses
        self._submitting: set[int] = set()  # servers whose upload is being checked and prepared

    @property
    def _jobs(self) -> list[Job]:
        """The running job, then the queued ones."""
        return [*([self._running] if self._running else []), *self._queue]

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Fail jobs a restart interrupted (their files go), then attach every ready adapter that fits
        the model now served and restore each server's choice."""
        for model in await self.registry.with_status("queued", "training"):
            log.warning(
                "server model %s (server %s) was interrupted by a restart", model.name, model.guild_id
            )
            await self._fail(model, INTERRUPTED)
        await self.reattach()

    async def reattach(self) -> None:
        """Attach the ready adapters trained on the model now served (after start-up or a reload)."""
        base_id = self.worker.generator.card.model_id
        self._cards.clear()  # after a reload the generator is a new one, holding no adapter yet
        attached: dict[int, str] = {}  # row id -> adapter name
        for model in await self.registry.with_status("ready"):
            if model.base_model_id != base_id:
                continue  # trained on another model: listed as unusable until retrained
            try:
                await self._attach(model)
            except LinernotesError as e:
                log.error(
                    "server model %s (server %s) could not be attached: %s", model.name, model.guild_id, e
                )
            else:
                attached[model.id] = model.adapter_name
        self._active = {g: attached[m] for g, m in (await self.registry.actives()).items() if m in attached}

    async def close(self) -> None:
        """Stop the running job and fail the queued ones (a restart cannot resume them)."""
        jobs = self._jobs
        self._queue.clear()
        for job in jobs:
            job.cancelled = True
            if job.process is not None:
                await job.process.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for job in jobs:
            await self._fail(job.model, INTERRUPTED)

    # --- routing ------------------------------------------------------------------------------

    def route(self, guild_id: int | None, kind: str) -> Route:
        """The model that answers ``kind`` in this server: its adapter when it knows the kind."""
        base = Route(None, self.worker.generator.card)
        name = self._active.get(guild_id) if guild_id is not None else None
        card = self._cards.get(name) if name else None
        if card is None or kind not in card.tags:
            return base
        return Route(name, card)

    def in_use(self) -> list[tuple[str, Card]]:
        """The attached adapters some server uses (name, card): what the warm-up fills besides the bot's own."""
        names = sorted(set(self._active.values()))
        return [(n, self._cards[n]) for n in names if n in self._cards]

    # --- /model train -------------------------------------------------------------------------

    async def submit(
        self,
        guild_id: int,
        name: str,
        filename: str,
        size: int,
        read: Callable[[], Awaitable[bytes]],
        notify: Notify,
    ) -> tuple[ServerModel, Prepared, int]:
        """Check, download, store and prepare an upload, register the model and queue its training;
        returns it, what preparing kept, and how many jobs are ahead of it."""
        name = check_name(name)
        safe = check_upload(filename, size, self.config.upload_limit)
        self._claim(guild_id)  # before any await: a second upload from this server now waits its turn
        folder = new_folder(self.root, guild_id)
        try:
            await self._check_room(guild_id)
            data = await read()
            safe = check_upload(filename, len(data), self.config.upload_limit)  # Discord's size may lie
            upload = store_upload(data, safe, folder / "upload")
            prepared = await asyncio.to_thread(prepare_upload, upload, folder / "prepared")
            base_id = self.worker.generator.card.model_id
            model = await self.registry.add(
                guild_id, name, base_id, str(folder), filename, prepared.to_dict()
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # an upload that is refused is not kept
            raise
        finally:
            self._submitting.discard(guild_id)
        ahead = len(self._queue) + (self._running is not None)
        self._queue.append(Job(model, notify))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run_queue(), name="linernotes-training")
        return model, prepared, ahead

    def _claim(self, guild_id: int) -> None:
        """Mark this server as uploading, or refuse: it has a job, or another upload is being prepared."""
        for job in self._jobs:
            if job.model.guild_id == guild_id:
                raise ModelError(
                    f"This server's model {job.model.name!r} is still training; wait for it or /model cancel."
                )
        if guild_id in self._submitting:
            raise ModelError("This server's last upload is still being prepared; try again in a moment.")
        self._submitting.add(guild_id)

    async def _check_room(self, guild_id: int) -> None:
        """Refuse before downloading: the server's quota, a full queue."""
        await self.registry.check_room(guild_id, self.config.models_per_server)
        if len(self._queue) >= self.config.training_queue:
            raise ModelError("The bot is training other servers' models; try again in a few minutes.")

    # --- the queue ----------------------------------------------------------------------------

    async def _run_queue(self) -> None:
        """Train queued jobs one at a time, oldest first."""
        while self._queue:
            job = self._queue.pop(0)
            self._running = job
            try:
                await self._train(job)
            except LinernotesError as e:
                await self._fail(job.model, str(e))
                await job.notify(f"❌ Training **{job.model.name}** failed: {e}")
            except Exception:  # a bug must not leave the job "training" forever, nor stop the queue
                log.exception("training %s (server %s) failed", job.model.name, job.model.guild_id)
                await self._fail(job.model, "an error on the bot's side; the operator has the details")
                await job.notify(
                    f"❌ Training **{job.model.name}** failed on the bot's side; it has been logged."
                )
            finally:
                self._running = None

    async def _train(self, job: Job) -> None:
        """Run one job's child process to its end, then register the adapter (or report why not)."""
        model, folder = job.model, Path(job.model.path)
        await self.registry.set_status(model.id, "training")
        process = job.process = TrainingProcess(
            folder / "prepared", Path(self.config.checkpoint), folder, self.config.adapter_steps
        )
        await process.start()
        done: dict[str, Any] | None = None
        error: str | None = None
        async for event in process.events():
            if event.get("event") == "step":
                await self._progress(job, event)
            elif event.get("event") == "done":
                done = event
            elif event.get("event") == "error":
                error = str(event.get("message"))
        status = await process.wait()
        if job.cancelled:
            return  # whoever cancelled has cleaned up and answered
        if done is None:
            log.error("adapter training for %s exited with %d:\n%s", model.name, status, process.tail())
            raise ModelError(
                error or f"the training process stopped (exit status {status}); the operator can see why"
            )
        await self._register(job, done)

    async def _progress(self, job: Job, event: dict[str, Any]) -> None:
        """Edit the member's message with the step, loss and time left (at most every few seconds)."""
        now = time.time()
        if now - job.last_note < PROGRESS_EVERY and event.get("step") != event.get("total"):
            return
        job.last_note = now
        eta = float(event.get("eta") or 0)
        await job.notify(
            f"🏋️ Training **{job.model.name}**: step {event['step']}/{event['total']}, "
            f"loss {float(event['loss']):.2f}, about {_duration(eta)} left"
        )

    async def _register(self, job: Job, done: dict[str, Any]) -> None:
        """Attach the finished adapter, mark it ready and make it this server's model; show a sample."""
        model = job.model
        checkpoint = Path(str(done["checkpoint"]))
        card = await self._attach(model, checkpoint)
        report = {
            **model.report,
            "training": {k: done.get(k) for k in ("steps", "seconds", "val_loss", "base_val_loss")},
        }
        await self.registry.set_status(model.id, "ready", adapter_id=card.model_id, report=report)
        await self.registry.set_active(model.guild_id, model.id)
        self._active[model.guild_id] = model.adapter_name
        lines = await self._sample(model.adapter_name, card)
        await job.notify(_ready_text(model.name, done, lines))

    async def _attach(self, model: ServerModel, checkpoint: Path | None = None) -> Card:
        """Load an adapter into the generator on the worker thread; remember its card."""
        path = checkpoint or Path(model.path) / CHECKPOINT
        name = model.adapter_name
        card = await self.worker.submit_call(lambda: self.worker.generator.attach(name, path))
        self._cards[name] = card
        return card

    async def _sample(self, adapter: str, card: Card) -> list[str]:
        """The first two lines of a chorus (or whatever part it knows best) from the new adapter."""
        parts = card.values("lyrics", "part")
        if "lyrics" not in card.tags or not parts:
            return []
        part = "chorus" if "chorus" in parts else parts[0]
        # Sampled as the server's /lyrics will be: the bot's guidance (an adapter samples as its base does).
        sampling = sampling_for(self.config, self.worker.generator.card)
        request = Request("lyrics", {"part": part}, sampling=sampling, model=adapter)
        (result,) = await self.worker.submit([request], INTERACTIVE)
        return [line for line in result.text.splitlines() if line.strip()][:2] if result.ok else []

    async def _fail(self, model: ServerModel, error: str) -> None:
        """Record a failed job and remove its files (the upload too: nothing is kept for a failure)."""
        await self.registry.set_status(model.id, "failed", error=error)
        shutil.rmtree(model.path, ignore_errors=True)

    # --- /model use, list, delete, cancel -----------------------------------------------------

    async def use(self, guild_id: int, name: str | None) -> str:
        """Make this server use its model ``name`` (None or 'default': the bot's own); returns a reply."""
        if name is None or name.strip().casefold() == "default":
            await self.registry.set_active(guild_id, None)
            self._active.pop(guild_id, None)
            return "This server now uses the bot's own model."
        model = await self.registry.named(guild_id, name)
        if model.status != "ready":
            raise ModelError(f"{model.name!r} is {model.status}; only a ready model can be used.")
        unusable = self._unusable(model)
        if unusable:
            raise ModelError(f"{model.name!r} cannot be used: {unusable}.")
        await self.registry.set_active(guild_id, model.id)
        self._active[guild_id] = model.adapter_name
        return f"This server now uses **{model.name}**."

    async def listing(self, guild_id: int) -> list[tuple[ServerModel, bool, str | None]]:
        """This server's models, each with whether it is in use and why a ready one is not served (None:
        it is, or it is not ready)."""
        active = self._active.get(guild_id)
        return [
            (m, m.adapter_name == active, self._unusable(m)) for m in await self.registry.of_server(guild_id)
        ]

    def _unusable(self, model: ServerModel) -> str | None:
        """Why a ready model is not attached (None: it is, or it is not ready)."""
        if model.status != "ready" or model.adapter_name in self._cards:
            return None
        if model.base_model_id != self.worker.generator.card.model_id:
            return "it was trained on another version of the bot's model; train it again"
        # Attached only at start-up or /reload: `linernotes models add` may have registered it since.
        return (
            "the bot has not loaded it (added since the bot started, or it failed to load); "
            "it loads when the bot restarts"
        )

    async def delete(self, guild_id: int, name: str) -> str:
        """Delete a model: stop its training, detach it, and remove its upload, adapter and generations."""
        model = await self.registry.named(guild_id, name)
        await self._stop_job(guild_id, model.id)
        if model.adapter_name in self._cards:
            await self.worker.submit_call(lambda: self.worker.generator.detach(model.adapter_name))
            del self._cards[model.adapter_name]
        if self._active.get(guild_id) == model.adapter_name:
            del self._active[guild_id]
        removed = await self.registry.forget(model)
        shutil.rmtree(model.path, ignore_errors=True)
        texts = f"{removed} text{'' if removed == 1 else 's'}"
        return f"Deleted **{model.name}**: its upload, its adapter and the {texts} it wrote (with their ratings)."

    async def cancel(self, guild_id: int) -> str:
        """Stop this server's queued or running training job; returns a reply."""
        job = await self._stop_job(guild_id)
        if job is None:
            raise ModelError("This server has no model training.")
        await self.registry.forget(job.model)
        shutil.rmtree(job.model.path, ignore_errors=True)
        return f"Cancelled training **{job.model.name}**; its upload was deleted."

    async def _stop_job(self, guild_id: int, model_id: int | None = None) -> Job | None:
        """Take this server's job (only model ``model_id``'s, if given) out of the queue, or stop it."""
        for job in self._jobs:
            if job.model.guild_id == guild_id and model_id in (None, job.model.id):
                job.cancelled = True
                if job in self._queue:
                    self._queue.remove(job)
                if job.process is not None:
                    await job.process.stop()
                await job.notify(f"🛑 Training **{job.model.name}** was cancelled.")
                return job
        return None


def _duration(seconds: float) -> str:
    """'2 min 5 s' / '40 s'."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _ready_text(name: str, done: dict[str, Any], lines: list[str]) -> str:
    """The final edit: validation loss against the base, and a sample."""
    val, base = done.get("val_loss"), done.get("base_val_loss")
    loss = (
        f"validation loss {val:.2f} (the bot's model: {base:.2f})"
        if val is not None and base is not None
        else ""
    )
    sample = "\n".join(f"> {line}" for line in lines)
    return (
        f"✅ **{name}** is ready and now answers this server's /lyrics"
        + (f": {loss}" if loss else "")
        + f", after {done.get('steps')} steps in {_duration(float(done.get('seconds') or 0))}."
        + (f"\n{sample}" if sample else "")
        + "\n/model use default switches back to the bot's own model."
    )
