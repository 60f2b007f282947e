"""Server models: a server uploads lyrics, an adapter trains in the background, and that server's
requests are written by it.

``ServerModels`` is the service behind ``/model`` and the router the request handler asks which model
answers a server. Jobs run one at a time in a child process (``bot.trainer``), in the order they
were asked for; a server has at most one job at a time. The child reads (prepares) the upload itself,
so a hostile file costs the bot process nothing. A finished adapter is attached to the one generator
on the worker thread and registered in one write; generations are keyed by the adapter's own model
id, so no server is ever served another's text.

A model's state (``bot.model_states``) changes in one place, ``ServerModels._move``: synchronously, so
no await ever comes between a check and the claim it guards, and whatever asks second (a cancel, a
delete, the job itself) sees the first one's outcome. What a state means (the child stopped, the
adapter attached or let go, the files, the row, the member's message) follows the move, in ``_apply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.bot.config import BotConfig, sampling_for
from linernotes.bot.leases import Lease, holder_name
from linernotes.bot.model_states import (
    ATTACHED,
    CANCELLED,
    DELETED,
    FAILED,
    GONE,
    JOB,
    PREPARING,
    QUEUED,
    READY,
    SAMPLING,
    TRAINING,
    allowed,
    ended,
)
from linernotes.bot.names import NAME_MAX, RESERVED, name_key
from linernotes.bot.registry import ModelError, ModelRegistry, ServerModel, adapter_name
from linernotes.bot.trainer import TrainingProcess
from linernotes.bot.uploads import check_upload, shown, store_upload
from linernotes.bot.web.privacy import set_published
from linernotes.common.errors import AdapterError, LinernotesError
from linernotes.model.adapters import check_adapter
from linernotes.model.card import Card
from linernotes.model.generator import Request
from linernotes.model.worker import INTERACTIVE, GenerationWorker, QueueFull

log = logging.getLogger(__name__)
Notify = Callable[[str], Awaitable[None]]
Notifier = Callable[[int], Notify]  # a channel's id -> how to tell a member there (a message, then its edits)
INTERRUPTED = "stopped: the bot restarted before training finished; run /model train again"
BOT_SIDE = "an error on the bot's side; the operator has the details"
PROGRESS_EVERY = 5.0  # seconds between progress edits (Discord rate-limits message edits)
CHECKPOINT = "checkpoint"  # the adapter checkpoint inside a model's directory
# What a model's record keeps of its training run (the child's ``done`` event): /model list shows the losses,
# the operator's view on the web the cost.
TRAINING_FIGURES = ("steps", "seconds", "val_loss", "base_val_loss", "tokens", "cpu_s", "gpu_s")


@dataclass(frozen=True)
class Route:
    """Which model answers a request: an attached adapter's name (None: the bot's own) and its card."""

    adapter: str | None
    card: Card


@dataclass(eq=False)
class Tracked:
    """One model as the service holds it: its state (changed only by ``ServerModels._move``), its row
    once registered, what its job holds (folder, child process) and how to tell the member who asked."""

    guild_id: int
    name: str
    filename: str  # as uploaded
    notify: Notify | None = None
    state: str = QUEUED
    model: ServerModel | None = None
    folder: Path | None = None
    upload: Path | None = None
    process: TrainingProcess | None = None
    attached: bool = False  # its adapter may be in the generator (it reached sampling or ready)
    receiving: bool = False  # its upload is still coming in (``receive`` tells the member of its end too)
    report: dict[str, Any] = field(default_factory=dict)
    done: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    error: str | None = None
    note: str | None = None  # what the member is told of its end
    removed: int = 0  # texts deleted with it
    last_note: float = 0.0
    channel_id: int | None = None  # where it was asked for
    remote: bool = False  # received by another process, trained by this one (the trainer)

    @classmethod
    def of(cls, model: ServerModel) -> Tracked:
        """A registered model the service holds no job for (ready, failed, or left by a restart)."""
        return cls(
            model.guild_id, model.name, model.upload, state=model.status, model=model,
            folder=Path(model.path), attached=model.status == READY, report=model.report,
        )  # fmt: skip

    @property
    def adapter_name(self) -> str | None:
        return self.model.adapter_name if self.model else None


def models_root(config: BotConfig) -> Path:
    """Where server models' files live: ``models_dir``, else server-models/ beside the database."""
    return Path(config.models_dir or Path(config.database).resolve().parent / "server-models")


def new_folder(root: Path, guild_id: int) -> Path:
    """A fresh directory for one server model (its upload, run and adapter ``CHECKPOINT``)."""
    return root / str(guild_id) / uuid.uuid4().hex[:12]


def remove_folder(folder: Path, root: Path) -> None:
    """Delete a model's directory, and its server's directory under ``root`` once no model is left in it."""
    shutil.rmtree(folder, ignore_errors=True)
    if folder.parent.parent.resolve() == root.resolve():
        with contextlib.suppress(OSError):  # another model's folder is in it, or it is already gone
            folder.parent.rmdir()


def check_name(name: str) -> str:
    """A model name as stored (NFKC), or a ModelError saying what names may be."""
    name = unicodedata.normalize("NFKC", name).strip()
    if not (0 < len(name) <= NAME_MAX) or not all(c.isalnum() or c in " _-" for c in name):
        raise ModelError(f"A model name is 1-{NAME_MAX} letters, digits, spaces, '-' or '_'; got {name!r}.")
    if name_key(name) == RESERVED:
        raise ModelError("'default' means the bot's own model; choose another name.")
    return name


class ServerModels:
    """Each server's models: upload and train, use, list, delete, cancel; and routing requests."""

    def __init__(
        self,
        config: BotConfig,
        registry: ModelRegistry,
        worker: GenerationWorker,
        notifier: Notifier | None = None,
    ) -> None:
        self.config, self.registry, self.worker = config, registry, worker
        self.root = models_root(config)
        self._notifier = notifier  # tells the member of a job another process received (trainer only)
        self.holder = holder_name()
        # A trainer's jobs are its own while this lease lives (renewed at each look at the store); a trainer
        # looking after it is gone fails them. Taken in ``start``.
        self._lease: Lease | None = None
        self._unattachable: set[int] = set()  # ready models that failed to attach: retried on reattach only
        self._queue: list[Tracked] = []  # jobs whose upload is stored, in the order asked; one runs at a time
        self._running: Tracked | None = None
        self._task: asyncio.Task | None = None
        self._cards: dict[str, Card] = {}  # attached adapter name -> its card
        self._active: dict[int, str] = {}  # server id -> the adapter name it uses
        self._jobs: dict[int, Tracked] = {}  # server id -> its one job, from the moment it is claimed
        self._tracked: dict[int, Tracked] = {}  # row id -> the model (kept once gone: a late ask finds that)
        self._next_upload: dict[int, float] = {}  # server id -> when /model train takes its next upload

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """A trainer fails the jobs whose process is gone (a restart interrupted them; their files go);
        then every process attaches each ready adapter that fits the model now served and restores
        each server's choice. Jobs queued by processes that do not train wait for the trainer."""
        if self.config.trainer:
            self._lease = Lease(self.registry.db, f"process:{self.holder}", holder=self.holder)
            await self._lease.take()
            await self._fail_orphans()
        await self.reattach()

    async def _fail_orphans(self) -> None:
        """Fail every job whose trainer is gone, telling its member where the trainer can."""
        for model in await self.registry.orphans():
            log.warning(
                "server model %s (server %s) was interrupted by a restart", model.name, model.guild_id
            )
            t = self._track(model)
            t.notify = t.notify or self._notify_in(model)
            await self._enter(t, FAILED, error=INTERRUPTED)

    def _notify_in(self, model: ServerModel) -> Notify | None:
        """How to tell the member who asked for ``model`` in its channel (None: no way)."""
        if self._notifier is None or model.channel_id is None:
            return None
        return self._notifier(model.channel_id)

    async def reattach(self) -> None:
        """Attach the ready adapters trained on the model now served (after start-up or a reload); one that
        fails the adapter check fails with the reason (``_broken``), and the bot starts without it."""
        self._cards.clear()  # after a reload the generator is a new one, holding no adapter yet
        self._unattachable.clear()
        for model in await self._servable():
            await self._try_attach(model)
        await self._follow_choices()

    async def _servable(self) -> list[ServerModel]:
        """The ready models trained on the model now served (others are unusable until retrained)."""
        base = self.worker.card.model_id
        return [m for m in await self.registry.with_status(READY) if m.base_model_id == base]

    async def _try_attach(self, model: ServerModel) -> None:
        """Check and attach one ready adapter; one that fails the adapter check fails with the reason
        (``_broken``), and one that cannot be attached for another reason waits for the next reattach."""
        where = Path(model.path) / CHECKPOINT
        try:  # the check `models add` and the trainer's output passed, against the model now served
            await asyncio.to_thread(check_adapter, where, self.worker.card, Path(self.config.checkpoint))
            await self._attach(model)
        except AdapterError as e:  # broken for good: say so in /model list rather than retry forever
            log.error("server model %s (server %s) is broken: %s", model.name, model.guild_id, e)
            await self._broken(model, e)
        except LinernotesError as e:  # not the adapter's fault (the backend's server, say): next start
            log.error("server model %s (server %s) could not be attached: %s", model.name, model.guild_id, e)
            self._unattachable.add(model.id)
        except Exception:  # one adapter must never stop the bot from starting; the traceback is logged
            log.exception("server model %s (server %s) could not be attached", model.name, model.guild_id)
            self._unattachable.add(model.id)

    async def _follow_choices(self) -> None:
        """Each server's choice as the store has it, where the chosen adapter is attached."""
        chosen = {g: adapter_name(m) for g, m in (await self.registry.actives()).items()}
        self._active = {g: name for g, name in chosen.items() if name in self._cards}

    # --- other processes on the same store --------------------------------------------------------

    async def sync(self) -> None:
        """Follow what other processes changed in the store (``sync_interval``): a trainer fails the jobs of
        trainers gone and claims jobs queued for it; a process that does not train follows its queued jobs
        to their end; every process attaches models trained elsewhere, lets go of models deleted or failed
        elsewhere, and takes each server's choice from the store."""
        if self._lease is not None:
            await self._lease.take()  # renewed at each look: alive while this process looks
            await self._fail_orphans()
            self._ensure_runner()
        else:
            await self._follow_jobs()
        await self._follow_ready()

    async def _follow_ready(self) -> None:
        """Attach the ready adapters this process does not hold yet; let go of those no longer ready."""
        ready = {m.adapter_name: m for m in await self._servable()}
        busy = {t.adapter_name for t in self._jobs.values() if t.adapter_name}  # a local job's sample
        for name in [n for n in self._cards if n not in ready and n not in busy]:
            del self._cards[name]
            await self._detach(name)
        jobs = list(self._jobs.values())  # records compare by identity (``eq=False``)
        for t_id in [i for i, t in self._tracked.items() if t.state in (READY, FAILED) and t not in jobs]:
            del self._tracked[t_id]  # settled: the row is the record, and it may have changed elsewhere
        for name, model in ready.items():
            if name not in self._cards and model.id not in self._unattachable:
                await self._try_attach(model)
        await self._follow_choices()

    async def _follow_jobs(self) -> None:
        """The jobs this process queued for the trainer: follow each to its end, and tell its member."""
        for t in [t for t in list(self._jobs.values()) if t.model is not None and not t.receiving]:
            assert t.model is not None
            row = await self.registry.by_id(t.model.id)
            status = row.status if row is not None else CANCELLED
            if status == t.state:
                continue
            t.state, t.model = status, row or t.model  # the trainer moved it: follow, without acting again
            if status in JOB:
                continue
            self._jobs.pop(t.guild_id, None)
            await self._tell(t, _followed_text(t.name, status, row.error if row else None))
            t.notify = None

    async def _broken(self, model: ServerModel, error: AdapterError) -> None:
        """A ready model whose adapter cannot be served fails as any model does, through its states: no
        longer routed to or anyone's choice, let go of, its reason in its row.

        Its files go too, as every failed model's: a failed row is replaced by a new model of its name
        with no file removed (``ModelRegistry.add``), so files kept here would stay behind for good. What
        is lost is the bot's copy of an adapter that cannot be served: ``models add`` leaves the original
        where it was, and the reason (in /model list) and the log say what to fix."""
        reason = f"its adapter cannot be served ({error.reason}); /model delete removes it"
        # Its record says attached (``Tracked.of``, a ready row): rightly, as the load may have failed
        # halfway; its release lets the generator go of it if it holds it, and of nothing otherwise.
        await self._enter(self._track(model), FAILED, error=reason)

    async def close(self) -> None:
        """Fail every job (a restart cannot resume them), stopping the running child; tells no one (the
        bot is going). All are moved first, so the queue cannot start another meanwhile."""
        # A process that does not train holds only jobs queued for the trainer: they stay queued.
        held = list(self._jobs.values()) if self.config.trainer else []
        jobs = [t for t in held if self._move(t, FAILED)]
        for t in jobs:
            t.notify, t.error = None, INTERRUPTED
            await self._apply(t)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lease is not None and self.registry.db.is_open:  # a store closed first: it expires
            await self._lease.give_back()

    # --- routing ------------------------------------------------------------------------------

    def route(self, guild_id: int | None, kind: str) -> Route:
        """The model that answers ``kind`` in this server: its adapter when it knows the kind."""
        base = Route(None, self.worker.card)
        name = self._active.get(guild_id) if guild_id is not None else None
        card = self._cards.get(name) if name else None
        if card is None or kind not in card.tags:
            return base
        return Route(name, card)

    def in_use(self) -> list[tuple[str, Card]]:
        """The attached adapters some server uses (name, card): what the warm-up fills besides the bot's own."""
        names = sorted(set(self._active.values()))
        return [(n, self._cards[n]) for n in names if n in self._cards]

    # --- states: the one place they change, and what each one means ----------------------------

    def _move(self, t: Tracked, to: str) -> bool:
        """Move ``t`` to state ``to`` if the transition is allowed (else change nothing and return False).

        Synchronous on purpose: the check and the change are one step, with routing following at once
        (a model leaving sampling or ready is answered by no one from now on, whichever server chose it)."""
        if not allowed(t.state, to):
            return False
        left, t.state = t.state, to
        if to not in JOB and self._jobs.get(t.guild_id) is t:
            del self._jobs[t.guild_id]
        name = t.adapter_name
        if to in ATTACHED:
            t.attached = True
        if name and left in ATTACHED and to not in ATTACHED:
            self._cards.pop(name, None)
            self._active = {g: n for g, n in self._active.items() if n != name}
        if name and to == READY:
            self._active[t.guild_id] = name
        return True

    async def _enter(self, t: Tracked, to: str, *, error: str | None = None, note: str | None = None) -> bool:
        """Move ``t`` to ``to`` and carry out what that means; False (nothing done) if not allowed."""
        if not self._move(t, to):
            return False
        t.error, t.note = error, note
        await self._apply(t)
        return True

    async def _apply(self, t: Tracked) -> None:
        """What the state ``t`` was just moved to means: the child, adapter, files, row and message."""
        state = t.state
        if ended(state):
            await self._release(t)
            removed = await self._persist(t)
            t.removed = removed
            t.note = t.note or self._ending(t)
            await self._tell(t, t.note)
            if not t.receiving:
                t.notify = None  # the record of a gone model outlives the member's interaction
        elif state == PREPARING:
            await self._tell(t, f"⏳ Reading {shown(t.filename)} for **{t.name}**…")
            await self._set_status(t, PREPARING)
        elif state == TRAINING:  # the member's message first: it shows what preparing kept
            await self._tell(t, "🏋️ Training starts now.")
            await self._set_status(t, TRAINING, report=t.report)
        elif state == SAMPLING:
            await self._attach_trained(t)
        elif state == READY:
            await self._set_status(t, READY)
            assert t.model is not None
            await self.registry.set_active(t.guild_id, t.model.id)
            if t.state == READY:  # not deleted meanwhile
                await self._tell(t, _ready_text(t.name, t.done, t.lines))

    async def _set_status(self, t: Tracked, status: str, **fields: Any) -> None:
        """Record a state in the model's row (a row removed meanwhile is left removed)."""
        if t.model is not None:
            await self.registry.set_status(t.model.id, status, **fields)

    async def _release(self, t: Tracked) -> None:
        """Let go of what an ended model holds: its child process, its adapter, its files (idempotent)."""
        if t.process is not None:
            await t.process.stop()
        if t.attached and t.adapter_name:
            await self._detach(t.adapter_name)
        if t.folder is not None:
            remove_folder(t.folder, self.root)

    async def _persist(self, t: Tracked) -> int:
        """Record an end in the database: a failed model's row stays, with why; a cancelled or deleted
        one's goes, with every text it wrote (none of another model's); returns how many texts went."""
        if t.model is None:
            return 0
        if t.state == FAILED:  # and no server's choice: only a ready model serves
            await self.registry.fail(t.model.id, t.error)
            return 0
        # The bot's own model's texts stay, whatever id a (legacy) row carries.
        return await self.registry.forget(t.model, keep=(self.worker.card.model_id,))

    def _ending(self, t: Tracked) -> str:
        """What the member who asked is told when the model ends."""
        if t.state == FAILED:
            return f"❌ Training **{t.name}** failed: {t.error}"
        if t.state == DELETED:
            return f"🗑️ **{t.name}** was deleted."
        return f"🛑 Training **{t.name}** was cancelled."

    async def _tell(self, t: Tracked, text: str) -> None:
        """Edit the member's message: what preparing kept (once known), then ``text``."""
        if t.notify is not None:
            await t.notify("\n".join([*t.header, text]))

    def _track(self, model: ServerModel) -> Tracked:
        """The service's record of a registered model: the one it holds (a job, or one that is gone),
        else one made from the row (a ready or failed model)."""
        t = self._tracked.get(model.id)
        if t is None:
            return self._tracked.setdefault(model.id, Tracked.of(model))
        if t.state in (READY, FAILED):  # settled: the row is the record (a job's is kept by its runner)
            t.model = model
        return t

    # --- /model train -------------------------------------------------------------------------

    async def submit(
        self,
        guild_id: int,
        name: str,
        filename: str,
        size: int,
        read: Callable[[], Awaitable[bytes]],
        notify: Notify,
    ) -> Tracked:
        """Claim, download, store and register an upload and queue its training (``claim`` then
        ``receive``); returns the model's record."""
        return await self.receive(self.claim(guild_id, name, filename, size, notify), read)

    def claim(
        self,
        guild_id: int,
        name: str,
        filename: str,
        size: int,
        notify: Notify,
        channel_id: int | None = None,
    ) -> Tracked:
        """Check a /model train request and take this server's one job and a place in the training
        queue, with no await: a /model cancel or delete sent right after finds the job, and uploads
        arriving together are counted together. Refusals cost nothing (nothing is downloaded)."""
        name = check_name(name)
        check_upload(filename, size, self.config.upload_limit)  # Discord's size: checked again once read
        job = self._jobs.get(guild_id)
        if job is not None:
            raise ModelError(
                f"This server's model {job.name!r} is still {job.state}; wait for it or /model cancel."
            )
        wait = self._next_upload.get(guild_id, 0.0) - asyncio.get_running_loop().time()
        if wait > 0:
            every = _duration(self.config.train_cooldown)
            raise ModelError(
                f"This server can send /model train another file in {_duration(wait)} (one every {every})."
            )
        if len(self._jobs) > self.config.training_queue:  # one running, training_queue waiting
            raise ModelError("The bot is training other servers' models; try again in a few minutes.")
        t = self._jobs[guild_id] = Tracked(guild_id, name, filename, notify, channel_id=channel_id)
        return t

    async def receive(
        self,
        t: Tracked,
        read: Callable[[], Awaitable[bytes]],
        acknowledge: Callable[[], Awaitable[Any]] | None = None,
    ) -> Tracked:
        """Acknowledge the member, then download, store and register a claimed upload and queue its job;
        the child prepares it when its turn comes. A refusal (or any error) removes what it left and
        is raised for the caller to report."""
        t.receiving = True
        try:
            if acknowledge is not None:
                await acknowledge()
            accepted = await self._accept(t)
            if accepted:
                accepted = await self._register(t, await self._download(t, read))
        except BaseException:
            t.notify = None  # the caller reports the refusal
            if not await self._enter(t, CANCELLED):
                await self._catch_up(t)
            raise
        finally:
            t.receiving = False
        if not accepted:
            await self._catch_up(t)
            t.notify = None
        return t

    async def _accept(self, t: Tracked) -> bool:
        """Refuse before downloading: the server's quota, a name it has; False if the job ended."""
        await self.registry.check_room(t.guild_id, self.config.models_per_server)
        await self.registry.check_free(t.guild_id, t.name)
        # Every process's jobs wait for the one trainer: the queue's limit is the store's.
        if await self.registry.waiting(0) > self.config.training_queue:
            raise ModelError("The bot is training other servers' models; try again in a few minutes.")
        if t.state != QUEUED:
            return False
        # From the download on, an upload counts against the server's cooldown, refused or not.
        self._next_upload[t.guild_id] = asyncio.get_running_loop().time() + self.config.train_cooldown
        return True

    async def _download(self, t: Tracked, read: Callable[[], Awaitable[bytes]]) -> bytes | None:
        """The upload's bytes (None: the job ended meanwhile)."""
        data = await read()
        return data if t.state == QUEUED else None

    async def _register(self, t: Tracked, data: bytes | None) -> bool:
        """Store the upload (data only, checked as UTF-8), register the model queued and queue its job;
        False if the job ended before it was queued."""
        if data is None:
            return False
        safe = check_upload(t.filename, len(data), self.config.upload_limit)  # Discord's size may lie
        t.folder = new_folder(self.root, t.guild_id)
        t.upload = store_upload(data, safe, t.folder / "upload")
        base_id = self.worker.card.model_id
        holder = self.holder if self.config.trainer else None  # else: queued for the trainer to claim
        t.model = await self.registry.add(
            t.guild_id, t.name, base_id, str(t.folder), t.filename, {}, holder=holder, channel_id=t.channel_id
        )
        self._tracked[t.model.id] = t
        if t.state != QUEUED:
            return False
        ahead = await self.registry.waiting(t.model.id)
        if self.config.trainer:
            self._queue.append(t)
            self._ensure_runner()
            where = (
                f"queued behind {ahead} other training job(s)"
                if ahead
                else "it is read, then training starts"
            )
        else:
            where = (
                f"queued for the bot's trainer behind {ahead} job(s); it posts its progress in this channel"
            )
        await self._tell(t, f"⏳ **{t.name}** from {shown(t.filename)}: {where}.")
        return True

    def _ensure_runner(self) -> None:
        """Start working through the queue unless already at it."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run_queue(), name="linernotes-training")

    async def _catch_up(self, t: Tracked) -> None:
        """A job that ended while its upload came in: remove what came after its end (its row, its files)
        and tell the member again (the first word may have come before their message existed)."""
        await self._persist(t)
        await self._release(t)
        if t.note is not None and t.notify is not None:
            await self._tell(t, t.note)

    # --- the queue ----------------------------------------------------------------------------

    async def _run_queue(self) -> None:
        """Train queued jobs one at a time, oldest first: this process's own, and those other processes
        queued for the trainer."""
        while (t := await self._next_job()) is not None:
            if t.state != QUEUED:
                continue  # cancelled or deleted while it waited
            self._running = t
            try:
                await self._train(t)
            except LinernotesError as e:
                await self._enter(t, FAILED, error=str(e))
            except Exception:  # a bug must not leave the job running forever, nor stop the queue
                if ended(t.state):  # e.g. its files went with a cancel while its adapter was loading
                    log.debug("training %s ended; then:", t.name, exc_info=True)
                else:
                    log.exception("training %s (server %s) failed", t.name, t.guild_id)
                await self._enter(t, FAILED, error=BOT_SIDE)
            finally:
                self._running = None
                if ended(t.state):  # a child started, or an adapter attached, after its end
                    await self._release(t)
                elif t.state == READY:
                    t.notify = None  # the member has been told; the interaction is not needed any more

    async def _next_job(self) -> Tracked | None:
        """The oldest job waiting: this process's next, unless another process queued one before it."""
        while self._queue and self._queue[0].state != QUEUED:
            self._queue.pop(0)  # cancelled or deleted while it waited
        local = self._queue[0] if self._queue else None
        older_than = local.model.id if local is not None and local.model is not None else None
        remote = await self.registry.claim_queued(self.holder, older_than)
        if remote is not None:
            return self._adopt(remote)
        return self._queue.pop(0) if self._queue else None

    def _adopt(self, model: ServerModel) -> Tracked:
        """A job another process queued, claimed by this trainer: its upload is on the shared models_dir."""
        folder = Path(model.path)
        uploads = sorted((folder / "upload").glob("*")) if (folder / "upload").is_dir() else []
        t = Tracked(
            model.guild_id, model.name, model.upload, self._notify_in(model), model=model, folder=folder,
            upload=uploads[0] if uploads else None, channel_id=model.channel_id, remote=True,
        )  # fmt: skip
        self._tracked[model.id] = t
        self._jobs.setdefault(model.guild_id, t)
        return t

    async def _train(self, t: Tracked) -> None:
        """Run one job's child: it prepares the upload (or refuses it), trains and reports the adapter;
        then attach it and write the member's sample."""
        if not await self._enter(t, PREPARING) or t.state != PREPARING:
            return  # ended before its child started (a cancel while the member was told): start none
        if t.upload is None:
            raise ModelError("its upload is missing from the models directory the bot's processes share")
        assert t.folder is not None
        process = t.process = TrainingProcess(
            t.upload, Path(self.config.checkpoint), t.folder, self.config.adapter_steps
        )
        await process.start()
        if ended(t.state):
            return  # ended while the child started: the caller stops it
        done: dict[str, Any] | None = None
        refused = error = None
        async for event in process.events():
            kind = event.get("event")
            if kind == "prepared":
                await self._prepared(t, event)
            elif kind == "step":
                await self._progress(t, event)
            elif kind == "done":
                done = event
            elif kind == "refused":
                refused = str(event.get("message"))
            elif kind == "error":
                error = str(event.get("message"))
        status = await process.wait()
        if ended(t.state):
            return  # whoever ended it has cleaned up and answered
        if refused is not None:  # an upload the readers refused is not kept, as one refused on arrival
            await self._enter(t, CANCELLED, note=f"⚠️ {refused}")
            return
        if done is None:
            log.error("adapter training for %s exited with %d:\n%s", t.name, status, process.tail())
            raise ModelError(
                error or f"the training process stopped (exit status {status}); the operator can see why"
            )
        await self._finish(t, done)

    async def _prepared(self, t: Tracked, event: dict[str, Any]) -> None:
        """The child read the upload: show what it kept, and the job is training."""
        if t.state != PREPARING:
            return
        t.report = dict(event.get("report") or {})
        t.header = [f"📥 **{t.name}** from {shown(t.filename)}: {event.get('summary')}."]
        await self._enter(t, TRAINING)

    async def _progress(self, t: Tracked, event: dict[str, Any]) -> None:
        """Edit the member's message with the step, loss and time left (at most every few seconds)."""
        now = time.time()
        if t.state != TRAINING or (
            now - t.last_note < PROGRESS_EVERY and event.get("step") != event.get("total")
        ):
            return
        t.last_note = now
        if t.remote and await self._ended_elsewhere(t):
            return
        eta = float(event.get("eta") or 0)
        await self._tell(
            t,
            f"🏋️ Training **{t.name}**: step {event['step']}/{event['total']}, "
            f"loss {float(event['loss']):.2f}, about {_duration(eta)} left",
        )

    async def _ended_elsewhere(self, t: Tracked) -> bool:
        """Whether the process that received a job cancelled or deleted it (its row is gone): then stop
        it here quietly (that process told the member)."""
        assert t.model is not None
        if await self.registry.by_id(t.model.id) is not None:
            return False
        t.notify = None
        await self._enter(t, CANCELLED)
        return True

    async def _finish(self, t: Tracked, done: dict[str, Any]) -> None:
        """Attach the finished adapter (sampling), write the member's sample with it, then it is ready
        and this server's model."""
        t.done = done
        t.report = {
            **t.report,
            "training": {k: done.get(k) for k in TRAINING_FIGURES},
        }
        if not await self._enter(t, SAMPLING) or t.state != SAMPLING:
            return
        assert t.adapter_name is not None
        t.lines = await self._sample(t.adapter_name, self._cards[t.adapter_name])
        await self._enter(t, READY)

    async def _attach_trained(self, t: Tracked) -> None:
        """Sampling begins: load the finished adapter and record its id (ended meanwhile: its release,
        queued on the worker thread after this load, lets it go again)."""
        assert t.model is not None
        card = await self._load(t.model, Path(str(t.done["checkpoint"])))
        if t.state != SAMPLING:
            return
        self._cards[t.model.adapter_name] = card
        t.model = dataclasses.replace(t.model, model_id=card.model_id)  # what its texts will be kept under
        await self._set_status(t, SAMPLING, adapter_id=card.model_id, report=t.report)

    async def _load(self, model: ServerModel, checkpoint: Path | None = None) -> Card:
        """Load an adapter into the generator on the worker thread; its card."""
        path = checkpoint or Path(model.path) / CHECKPOINT
        name = model.adapter_name
        return await self.worker.attach(name, path)

    async def _attach(self, model: ServerModel, checkpoint: Path | None = None) -> Card:
        """Load an adapter into the generator and serve it (a ready model's, on start-up or a reload)."""
        card = await self._load(model, checkpoint)
        self._cards[model.adapter_name] = card
        return card

    async def _detach(self, name: str) -> None:
        """Let the generator go of an adapter (if it holds it), on the worker thread."""
        try:
            await self.worker.detach(name)
        except QueueFull as e:  # no longer routed to: it only takes memory until the bot restarts
            log.error("adapter %s stays loaded, unused, until the bot restarts: %s", name, e)

    async def _sample(self, adapter: str, card: Card) -> list[str]:
        """The first two lines of a chorus (or whatever part it knows best) from the new adapter."""
        parts = card.values("lyrics", "part")
        if "lyrics" not in card.tags or not parts:
            return []
        part = "chorus" if "chorus" in parts else parts[0]
        # Sampled as the server's /lyrics will be: the bot's guidance (an adapter samples as its base does).
        sampling = sampling_for(self.config, self.worker.card, "lyrics")
        request = Request("lyrics", {"part": part}, sampling=sampling, model=adapter)
        (result,) = await self.worker.submit([request], INTERACTIVE)
        await self.registry.db.note_cost([result])
        return [line for line in result.text.splitlines() if line.strip()][:2] if result.ok else []

    # --- /model use, list, delete, cancel -----------------------------------------------------

    async def use(self, guild_id: int, name: str | None) -> str:
        """Make this server use its model ``name`` (None or 'default': the bot's own); returns a reply."""
        if name is None or name_key(name) == RESERVED:
            self._active.pop(guild_id, None)
            await self.registry.set_active(guild_id, None)
            return "This server now uses the bot's own model."
        model = await self.registry.named(guild_id, name)
        t = self._track(model)
        if t.state != READY:
            raise ModelError(f"{model.name!r} is {t.state}; only a ready model can be used.")
        unusable = self._unusable(model)
        if unusable:
            raise ModelError(f"{model.name!r} cannot be used: {unusable}.")
        self._active[guild_id] = model.adapter_name  # with the check: a delete after this clears it
        await self.registry.set_active(guild_id, model.id)
        return f"This server now uses **{model.name}**."

    async def publish(self, guild_id: int, published: bool) -> str:
        """Opt this server's models' texts into the bot's website (or out again); returns a reply."""
        await set_published(self.registry.db, guild_id, published)
        where = f" ({self.config.web_url})" if self.config.web_url else ""
        if published:
            return (
                f"This server's models' texts may now be shown on the bot's website{where}: those warmed or "
                "posted here, never one continuing someone's own line, and never naming this server or anyone "
                "in it. /model publish off takes them down."
            )
        return "This server's models' texts are no longer shown on the bot's website."

    async def listing(self, guild_id: int) -> list[tuple[ServerModel, bool, str | None]]:
        """This server's models (in the state the service holds them in), each with whether it is in use
        and why a ready one is not served (None: it is, or it is not ready)."""
        active = self._active.get(guild_id)
        found = []
        for model in await self.registry.of_server(guild_id):
            t = self._tracked.get(model.id)
            if t is not None and t.state in GONE:
                continue  # being removed
            if t is not None and t.state != model.status:
                model = dataclasses.replace(model, status=t.state)
            found.append((model, model.adapter_name == active, self._unusable(model)))
        return found

    def _unusable(self, model: ServerModel) -> str | None:
        """Why a ready model is not attached (None: it is, or it is not ready)."""
        if model.status != READY or model.adapter_name in self._cards:
            return None
        if model.base_model_id != self.worker.card.model_id:
            return "it was trained on another version of the bot's model; train it again"
        if model.id in self._unattachable:
            return "it failed to load (the operator has the details); it is tried again when the bot restarts"
        # Attached at start-up, /reload, and every sync_interval (added by `linernotes models add` since).
        if self.config.sync_interval > 0:
            return f"the bot has not loaded it yet (added since it started); it loads within {self.config.sync_interval:.0f} s"
        return (
            "the bot has not loaded it (added since the bot started, or it failed to load); "
            "it loads when the bot restarts"
        )

    async def delete(self, guild_id: int, name: str) -> str:
        """Delete a model in any state: stop its job, let its adapter go, and remove its upload, adapter
        and generations."""
        t = self._jobs.get(guild_id)
        if t is None or name_key(t.name) != name_key(name):  # its job may have no row yet
            t = self._track(await self.registry.named(guild_id, name))
        if not await self._enter(t, DELETED):  # with no await since the lookup: nothing came between
            raise ModelError(f"This server has no model named {name!r} (it was just removed).")
        texts = f"{t.removed} text{'' if t.removed == 1 else 's'}"
        return f"Deleted **{t.name}**: its upload, its adapter and the {texts} it wrote (with their ratings)."

    async def cancel(self, guild_id: int) -> str:
        """Stop this server's training job, in whatever state it is (from queued to sampling); returns a
        reply."""
        t = self._jobs.get(guild_id)
        if t is None:
            raise ModelError(
                "This server has no model training (/model delete removes a model that is ready)."
            )
        await self._enter(t, CANCELLED)  # a job may always be cancelled: nothing came between
        return f"Cancelled training **{t.name}**; its upload was deleted."


def _duration(seconds: float) -> str:
    """'2 min 5 s' / '40 s'."""
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _followed_text(name: str, status: str, error: str | None) -> str:
    """What the member is told when the trainer (another process) ended their job."""
    if status == READY:
        return f"✅ **{name}** is ready and now answers this server's /lyrics (a sample is in the trainer's message)."
    if status == FAILED:
        return f"❌ Training **{name}** failed: {error}"
    return f"🛑 Training **{name}** was stopped."


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
