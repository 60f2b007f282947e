"""Group commit for takes: requests for one cache key that arrive while a take is being written are
served together by the next one, in one transaction.

A burst of requests for one hot key then holds the key's lock a few times instead of once each (on
PostgreSQL each hold is several round trips, and waits for the holder's event loop to come round), and
the least-shown rule still holds: a batch's takes are made one after another, as they would be apart.
Discord's takes (``Database.take``) and the web API's (``WebStore.take``) both go through here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

G = TypeVar("G", bound=Hashable)
R = TypeVar("R")
T = TypeVar("T")
MAX_BATCH = 64  # takes written in one transaction at most (a batch holds the key's lock while it runs)


class Batcher(Generic[G, R, T]):
    """Runs ``take(group, requests)`` for the requests waiting in a group, one batch after another.

    ``take`` returns one item per request, in order (None: nothing left for it). An item whose request
    went away (its task cancelled) while the batch ran is handed to ``orphaned``, to be given back."""

    def __init__(
        self,
        take: Callable[[G, list[R]], Awaitable[Sequence[T | None]]],
        orphaned: Callable[[list[T]], Awaitable[None]] | None = None,
    ) -> None:
        self._take, self._orphaned = take, orphaned
        self._waiting: dict[G, list[tuple[R, asyncio.Future[T | None]]]] = {}
        self._draining: dict[G, asyncio.Task] = {}

    async def take(self, group: G, request: R) -> T | None:
        """One item for this request (None: nothing to take); waits for the group's next batch."""
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(group, []).append((request, future))
        if group not in self._draining:
            self._draining[group] = asyncio.ensure_future(self._drain(group))
        return await future

    async def _drain(self, group: G) -> None:
        """Serve the group's waiting requests, a batch at a time, until none waits."""
        try:
            while self._waiting.get(group):
                waiting = self._waiting[group]
                batch, self._waiting[group] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                try:
                    items = await self._take(group, [request for request, _ in batch])
                except Exception as e:  # each waiting request answers for itself (a busy database, say)
                    _fail([future for _, future in batch], e)
                    continue
                orphans = _settle([future for _, future in batch], items)
                if orphans and self._orphaned is not None:
                    await self._orphaned(orphans)
        finally:  # normally nothing waits here; on cancellation (shutting down) nobody waits forever
            left = self._waiting.pop(group, [])
            del self._draining[group]
            _fail([future for _, future in left], ConnectionAbortedError("shutting down"))


def _settle(futures: list[asyncio.Future], items: Sequence) -> list:
    """Give each future its item (None beyond the items); the items nobody waits for any more."""
    orphans = []
    for i, future in enumerate(futures):
        item = items[i] if i < len(items) else None
        if not future.done():
            future.set_result(item)
        elif item is not None:
            orphans.append(item)
    return orphans


def _fail(futures: list[asyncio.Future], error: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
