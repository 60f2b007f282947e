"""Group commit for takes: requests for the same query that arrive while a take is being written are
served together by the next one, in one statement.

A burst of requests for one hot key then costs a few database statements instead of one each, and the
least-shown rule still holds (``WebStore.take`` picks n generations as n takes in a row would).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

G = TypeVar("G", bound=Hashable)
T = TypeVar("T")
MAX_BATCH = 64  # takes written in one statement at most (its work grows with the batch)


class Batcher(Generic[G, T]):
    """Runs ``take(group, n)`` for the requests waiting in a group, one statement after another."""

    def __init__(
        self, take: Callable[[Hashable, int], Awaitable[list[T]]], max_batch: int = MAX_BATCH
    ) -> None:
        self._take = take
        self._max = max_batch
        self._waiting: dict[G, list[asyncio.Future[T | None]]] = {}
        self._draining: dict[G, asyncio.Task] = {}

    async def take(self, group: G) -> T | None:
        """One item for this request (None: nothing to take); waits for the group's next statement."""
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(group, []).append(future)
        if group not in self._draining:
            task = asyncio.ensure_future(self._drain(group))
            self._draining[group] = task
        return await future

    async def _drain(self, group: G) -> None:
        """Serve the group's waiting requests, a batch at a time, until none waits."""
        try:
            while self._waiting.get(group):
                waiting = self._waiting[group]
                batch, self._waiting[group] = waiting[: self._max], waiting[self._max :]
                try:
                    items = await self._take(group, len(batch))
                except Exception as e:  # each waiting request answers for itself (a busy database, say)
                    _settle(batch, error=e)
                    continue
                _settle(batch, items)
        finally:  # normally nothing waits here; on cancellation (the site stopping) nobody waits forever
            left = self._waiting.pop(group, [])
            del self._draining[group]
            _settle(left, error=ConnectionAbortedError("the site is stopping"))


def _settle(batch: list[asyncio.Future], items: list | None = None, error: Exception | None = None) -> None:
    """Give each future its item (None beyond the items), or the error."""
    for i, future in enumerate(batch):
        if future.done():
            continue  # its request went away; its showing stays counted
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(items[i] if items is not None and i < len(items) else None)
