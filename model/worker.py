"""One generation worker: a single thread fed by a bounded priority queue.

Everything that generates (people's requests, the cache warm-up job, a checkpoint reload) goes through
``GenerationWorker``, so the model is used by one thread at a time and never on the event loop.
People's requests jump ahead of warm-up batches; each waiting job knows its position; a caller
(a user) may hold only a few queued jobs at once. A job that runs past its timeout fails with
``JobTimeout`` and its thread is abandoned (threads cannot be interrupted), so the queue moves on; a
thread pool that was shut down or broke is replaced before the next job.
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
from typing import Any

from data.errors import LinernotesError
from model.generator import Generator, Request, Result

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


class GenerationWorker:
    """Runs generation jobs one at a time on a dedicated thread; awaitable from the event loop."""

    def __init__(
        self,
        generator: Generator,
        max_queue: int = 64,
        max_per_owner: int = 2,
        timeout_per_text: float | None = None,
    ) -> None:
        self.generator = generator
        self.max_queue, self.max_per_owner = max_queue, max_per_owner
        self.timeout_per_text = timeout_per_text  # a job of n texts may run n times this; None: no limit
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._running: _Job | None = None
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
    def depth(self) -> int:
        """Jobs waiting or running."""
        return len(self._heap) + (self._running is not None)

    def check_room(self, owner: str | None = None) -> None:
        """Raise ``QueueFull`` if a job from ``owner`` would be refused now (costs no I/O: callers
        refuse before touching anything else)."""
        if len(self._heap) >= self.max_queue:
            raise QueueFull(f"the generator is busy ({len(self._heap)} jobs queued); try again in a minute")
        if owner is not None and self.owned(owner) >= self.max_per_owner:
            raise QueueFull(f"you already have {self.max_per_owner} requests waiting; wait for them first")

    def _enqueue(
        self, fn: Callable[[], Any], priority: int, owner: str | None, timeout: float | None = None
    ) -> _Job:
        if self._executor is None:
            raise RuntimeError("worker not started")
        self.check_room(owner)
        future = asyncio.get_running_loop().create_future()
        job = _Job(priority, next(self._seq), fn, future, owner, timeout)
        heapq.heappush(self._heap, job)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="linernotes-worker")
        return job

    def owned(self, owner: str) -> int:
        """Jobs of this owner waiting or running."""
        jobs = [*self._heap, *([self._running] if self._running else [])]
        return sum(j.owner == owner for j in jobs)

    def position(self, future: asyncio.Future) -> int:
        """1 when the job is running or next, 2 when one job is ahead of it, ...; 0 when done."""
        if self._running is not None and self._running.future is future:
            return 1
        ahead = sorted(self._heap)
        for i, job in enumerate(ahead):
            if job.future is future:
                return i + 1 + (self._running is not None)
        return 0

    def submit(
        self, requests: list[Request], priority: int = INTERACTIVE, owner: str | None = None
    ) -> asyncio.Future[list[Result]]:
        """Queue a generation; await the returned future for the results."""
        generator = self.generator  # the one current at submit time, even if a reload swaps it later
        timeout = None if self.timeout_per_text is None else self.timeout_per_text * max(1, len(requests))
        return self._enqueue(lambda: generator.generate(requests), priority, owner, timeout).future

    def submit_call(self, fn: Callable[[], Any], priority: int = INTERACTIVE) -> asyncio.Future:
        """Queue any model work (a checkpoint load, no timeout) on the worker thread."""
        return self._enqueue(fn, priority, None).future

    async def _drain(self) -> None:
        """Run queued jobs one at a time on the worker thread until the queue is empty."""
        loop = asyncio.get_running_loop()
        while self._heap:
            job = heapq.heappop(self._heap)
            if job.future.done():  # cancelled while waiting
                continue
            self._running = job
            try:
                result = await self._run(loop, job)
            except asyncio.CancelledError:
                job.future.cancel()
                raise
            except Exception as e:  # delivered to the awaiting caller, who decides what to show
                if not job.future.done():
                    job.future.set_exception(e)
            else:
                if not job.future.done():
                    job.future.set_result(result)
                self.completed += 1
            finally:
                self._running = None

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
            job.owner or "warm-up",
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


def _expire(future: asyncio.Future) -> None:
    """Mark a job's time as up (on the loop, called from the timer thread)."""
    if not future.done():
        future.set_result(None)


def _discard(future: asyncio.Future) -> None:
    """Consume an abandoned job's outcome (so no "exception was never retrieved" warning)."""
    if not future.cancelled():
        future.exception()
