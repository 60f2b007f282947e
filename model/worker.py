"""One generation worker: a single thread fed by a bounded priority queue.

Everything that generates (people's requests, the cache warm-up job, a checkpoint reload) goes through
``GenerationWorker``, so the model is used by one thread at a time and never on the event loop.
People's requests jump ahead of warm-up batches; each waiting job knows its position; a caller
(a user) may hold only a few queued jobs at once. Generation requests waiting together at the same
priority run as one batch (up to the generator's ``max_batch`` texts): a burst of people costs about
what one batched call costs, and requests for different adapters share that batch. A job that runs
past its timeout fails with ``JobTimeout`` and its thread is abandoned (threads cannot be
interrupted), so the queue moves on; a thread pool that was shut down or broke is replaced before the
next job.

The worker is the bot's one serving seam: it holds the generator privately and offers only ``submit``
(generate), ``swap`` (serve another model), ``attach``/``detach`` (adapters) and ``card`` (describe), so
nothing else touches the model or uses it off the worker thread.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.common.errors import LinernotesError
from linernotes.model.card import Card
from linernotes.model.generator import Generator, Request, Result

log = logging.getLogger(__name__)

INTERACTIVE, BACKGROUND = 0, 1


class QueueFull(LinernotesError):
    """The queue (or this caller's share of it) is full."""


class JobTimeout(LinernotesError):
    """A job ran past its timeout; it was abandoned."""


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    future: asyncio.Future = field(compare=False)
    owner: str | None = field(compare=False, default=None)
    timeout: float | None = field(compare=False, default=None)
    # A generation job's requests and generator, so jobs waiting together can share one batch.
    requests: list[Request] | None = field(compare=False, default=None)
    generator: Generator | None = field(compare=False, default=None)


class GenerationWorker:
    """Runs generation jobs one at a time on a dedicated thread; awaitable from the event loop."""

    def __init__(
        self,
        generator: Generator,
        max_queue: int = 64,
        max_per_owner: int = 2,
        timeout_per_text: float | None = None,
    ) -> None:
        self._generator = generator  # private: served only through the methods below, on the worker thread
        self.max_queue, self.max_per_owner = max_queue, max_per_owner
        self.timeout_per_text = timeout_per_text  # a job of n texts may run n times this; None: no limit
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._running: list[_Job] = []  # one job, or the generation jobs batched together
        self._task: asyncio.Task | None = None  # drains the queue; exists only while there is work
        self._executor: ThreadPoolExecutor | None = None
        self.completed = 0
        self.restarts = 0  # threads replaced (dead pool, or abandoned to a timed-out job)

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._executor is None:
            self._executor = self._new_executor()

    @staticmethod
    def _new_executor() -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="linernotes-generate")

    async def stop(self) -> None:
        """Cancel queued jobs, let the running one finish, and stop the thread."""
        for job in self._heap:
            if not job.future.done():
                job.future.cancel()
        self._heap.clear()
        if self._task is not None and not self._task.done():
            # The running job finishes on its thread (threads cannot be interrupted); its caller gets it.
            await asyncio.wait({self._task})
        self._task = None
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
            self._executor = None

    @property
    def card(self) -> Card:
        """The card of the model now served (its tags, ranges and id)."""
        return self._generator.card

    async def swap(self, load: Callable[[], Generator], priority: int = INTERACTIVE) -> Card:
        """Build a generator on the worker thread (a checkpoint load, queued like any job) and serve it from
        then on; its card. Jobs submitted before it is served still run on the one they were submitted to."""
        generator = await self._submit_call(load, priority)
        self._generator = generator
        return generator.card

    async def attach(self, name: str, path: Path | str) -> Card:
        """Load the adapter at ``path`` into the served generator as ``name``, on the worker thread; its card."""
        return await self._submit_call(lambda: self._generator.attach(name, path))

    async def detach(self, name: str) -> None:
        """Let the served generator go of the adapter ``name`` (if it holds it), on the worker thread."""
        generator = self._generator  # the one serving now, as for a submitted job

        def let_go() -> None:
            if name in generator.adapters:
                generator.detach(name)

        await self._submit_call(let_go)

    @property
    def depth(self) -> int:
        """Jobs waiting or running."""
        return len(self._heap) + len(self._running)

    def check_room(self, owner: str | None = None) -> None:
        """Raise ``QueueFull`` if a job from ``owner`` would be refused now (costs no I/O: callers
        refuse before touching anything else)."""
        if len(self._heap) >= self.max_queue:
            raise QueueFull(f"the generator is busy ({len(self._heap)} jobs queued); try again in a minute")
        self.check_owner(owner)

    def check_owner(self, owner: str | None) -> None:
        """Raise ``QueueFull`` if ``owner`` already has as many jobs waiting as one may."""
        if owner is not None and self.owned(owner) >= self.max_per_owner:
            raise QueueFull(f"you already have {self.max_per_owner} requests waiting; wait for them first")

    def _enqueue(
        self,
        fn: Callable[[], Any],
        priority: int,
        owner: str | None,
        timeout: float | None = None,
        requests: list[Request] | None = None,
        generator: Generator | None = None,
    ) -> _Job:
        if self._executor is None:
            raise RuntimeError("worker not started")
        self.check_room(owner)
        future = asyncio.get_running_loop().create_future()
        job = _Job(priority, next(self._seq), fn, future, owner, timeout, requests, generator)
        heapq.heappush(self._heap, job)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="linernotes-worker")
        return job

    def owned(self, owner: str) -> int:
        """Jobs of this owner waiting or running."""
        return sum(j.owner == owner for j in [*self._heap, *self._running])

    def position(self, future: asyncio.Future) -> int:
        """1 when the job is running or next, 2 when one job is ahead of it, ...; 0 when done."""
        if any(job.future is future for job in self._running):
            return 1
        ahead = sorted(self._heap)
        for i, job in enumerate(ahead):
            if job.future is future:
                return i + 1 + bool(self._running)
        return 0

    def submit(
        self, requests: list[Request], priority: int = INTERACTIVE, owner: str | None = None
    ) -> asyncio.Future[list[Result]]:
        """Queue a generation; await the returned future for the results."""
        generator = self._generator  # the one current at submit time, even if a swap replaces it later
        timeout = None if self.timeout_per_text is None else self.timeout_per_text * max(1, len(requests))
        fn = lambda: generator.generate(requests)  # noqa: E731
        return self._enqueue(fn, priority, owner, timeout, list(requests), generator).future

    def _submit_call(self, fn: Callable[[], Any], priority: int = INTERACTIVE) -> asyncio.Future:
        """Queue other model work (a checkpoint load, an adapter; no timeout) on the worker thread."""
        return self._enqueue(fn, priority, None).future

    async def _drain(self) -> None:
        """Run queued jobs one at a time on the worker thread until the queue is empty."""
        loop = asyncio.get_running_loop()
        while self._heap:
            job = heapq.heappop(self._heap)
            if job.future.done():  # cancelled while waiting
                continue
            jobs = [job, *self._batch_with(job)]
            self._running = jobs
            run = job if len(jobs) == 1 else self._merged(jobs)
            try:
                result = await self._run(loop, run)
            except asyncio.CancelledError:
                for j in jobs:
                    j.future.cancel()
                raise
            except Exception as e:  # delivered to the awaiting callers, who decide what to show
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
            else:
                self._deliver(jobs, result)
            finally:
                self._running = []

    def _batch_with(self, first: _Job) -> list[_Job]:
        """Waiting generation jobs that can run in one batch with ``first`` (same priority and
        generator, up to ``max_batch`` texts), taken out of the queue in their order."""
        if first.requests is None or first.generator is None:
            return []
        room = first.generator.config.max_batch - len(first.requests)
        taken = []
        for job in sorted(self._heap):
            if job.priority != first.priority or room <= 0:
                break
            fits = job.requests is not None and job.generator is first.generator and len(job.requests) <= room
            if fits and not job.future.done():
                taken.append(job)
                room -= len(job.requests or [])
        if taken:
            self._heap = [j for j in self._heap if j not in taken]
            heapq.heapify(self._heap)
        return taken

    @staticmethod
    def _merged(jobs: list[_Job]) -> _Job:
        """One job generating every request of ``jobs`` (its outcomes split again by ``_deliver``)."""
        first = jobs[0]
        timeouts = [j.timeout for j in jobs]
        timeout = None if None in timeouts else sum(t or 0.0 for t in timeouts)
        return _Job(first.priority, first.seq, lambda: _generate_together(jobs), first.future, None, timeout)

    def _deliver(self, jobs: list[_Job], result: Any) -> None:
        """Give each job its outcome: the result, or its own results or error from a merged batch."""
        outcomes = [result] if len(jobs) == 1 else result
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.future.done():
                continue
            if isinstance(outcome, Exception):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)
                self.completed += 1

    async def _run(self, loop: asyncio.AbstractEventLoop, job: _Job) -> Any:
        """Run one job on the thread (restarting a dead pool first), within its timeout."""
        try:
            running = loop.run_in_executor(self._executor, job.fn)
        except RuntimeError as e:  # "cannot schedule new futures after shutdown", or a broken pool
            log.error("generation thread was gone (%s); starting a new one", e)
            self._replace_executor()
            running = loop.run_in_executor(self._executor, job.fn)
        if job.timeout is None:
            return await running
        # Timed on a thread in wall-clock time, not with a loop timer: a stuck job must time out even
        # where the loop's clock waits for the thread (a simulated Discord's virtual time does).
        expired = loop.create_future()
        timer = threading.Timer(job.timeout, loop.call_soon_threadsafe, (_expire, expired))
        timer.daemon = True
        timer.start()
        try:
            await asyncio.wait({running, expired}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            expired.cancel()
        if running.done():
            return running.result()
        log.error(
            "generation job #%d (owner %s) ran past its %g s timeout; abandoning its thread",
            job.seq,
            job.owner or "warm-up or batch",
            job.timeout,
        )
        running.add_done_callback(_discard)  # it may still finish: nobody wants it any more
        self._replace_executor()
        raise JobTimeout(f"That took too long (over {job.timeout:g} s), so it was given up. Try again.")

    def _replace_executor(self) -> None:
        """Leave the current thread to finish on its own; later jobs run on a fresh one."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        self._executor = self._new_executor()
        self.restarts += 1


def _generate_together(jobs: list[_Job]) -> list[list[Result] | Exception]:
    """Each job's results from one batched call (on the worker thread). A job whose request the
    generator refuses (its adapter was deleted meanwhile, say) gets that error alone."""
    generator = jobs[0].generator
    assert generator is not None
    outcomes: list[list[Result] | Exception] = []
    accepted: list[Request] = []
    for job in jobs:
        try:
            prepared = [generator.prepare(r) for r in job.requests or []]
        except LinernotesError as e:
            outcomes.append(e)
        else:
            outcomes.append([])
            accepted.extend(prepared)
    results = iter(generator.generate_prepared(accepted))
    for job, outcome in zip(jobs, outcomes, strict=True):
        if isinstance(outcome, list):
            outcome.extend(next(results) for _ in job.requests or [])
    return outcomes


def _expire(future: asyncio.Future) -> None:
    """Mark a job's time as up (on the loop, called from the timer thread)."""
    if not future.done():
        future.set_result(None)


def _discard(future: asyncio.Future) -> None:
    """Consume an abandoned job's outcome (so no "exception was never retrieved" warning)."""
    if not future.cancelled():
        future.exception()
