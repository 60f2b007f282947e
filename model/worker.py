"""One generation worker: a single thread fed by a bounded priority queue.

Everything that generates (people's requests, the cache warm-up job, a checkpoint reload) goes through
``GenerationWorker``, so the model is used by one thread at a time and never on the event loop.
People's requests jump ahead of warm-up batches; each waiting job knows its position; a caller
(a user) may hold only a few queued jobs at once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
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


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    future: asyncio.Future = field(compare=False)
    owner: str | None = field(compare=False, default=None)


class GenerationWorker:
    """Runs generation jobs one at a time on a dedicated thread; awaitable from the event loop."""

    def __init__(self, generator: Generator, max_queue: int = 64, max_per_owner: int = 2) -> None:
        self.generator = generator
        self.max_queue, self.max_per_owner = max_queue, max_per_owner
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._running: _Job | None = None
        self._task: asyncio.Task | None = None  # drains the queue; exists only while there is work
        self._executor: ThreadPoolExecutor | None = None
        self.completed = 0

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linernotes-generate")

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

    def _enqueue(self, fn: Callable[[], Any], priority: int, owner: str | None) -> _Job:
        if self._executor is None:
            raise RuntimeError("worker not started")
        if len(self._heap) >= self.max_queue:
            raise QueueFull(f"the generator is busy ({len(self._heap)} jobs queued); try again in a minute")
        if owner is not None and self.owned(owner) >= self.max_per_owner:
            raise QueueFull(f"you already have {self.max_per_owner} requests waiting; wait for them first")
        job = _Job(priority, next(self._seq), fn, asyncio.get_running_loop().create_future(), owner)
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
        return self._enqueue(lambda: generator.generate(requests), priority, owner).future

    def submit_call(self, fn: Callable[[], Any], priority: int = INTERACTIVE) -> asyncio.Future:
        """Queue any model work (a checkpoint load) on the worker thread."""
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
                result = await loop.run_in_executor(self._executor, job.fn)
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
