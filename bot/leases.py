"""Work only one process at a time may do on a store (the warm-up), held as a row in ``leases``.

A lease is taken in one statement (an upsert that succeeds only when the row is free, expired, or already
ours), renewed by a heartbeat while the work runs, and given back at the end. A process that dies stops
renewing: its lease expires ``ttl`` seconds after its last heartbeat and the next process takes it. Each
holding is also recorded in ``warm_runs``, so overlaps can be checked from the store afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from linernotes.bot.engines import Unavailable
from linernotes.bot.storage import Database

log = logging.getLogger(__name__)
TTL = 120.0  # seconds a lease outlives its last heartbeat (how soon a dead process's work is taken over)


def holder_name() -> str:
    """Who holds a lease: this host and process, and a random part (pids repeat across machines)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """One named lease on a store, taken by one holder."""

    def __init__(self, db: Database, name: str, ttl: float = TTL, holder: str | None = None) -> None:
        self.db, self.name, self.ttl = db, name, ttl
        self.holder = holder or holder_name()

    async def take(self) -> bool:
        """Take the lease when it is free or expired (or already ours); whether we hold it now."""
        now = time.time()
        rows = await self.db.write(
            "INSERT INTO leases VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires = excluded.expires WHERE leases.expires < ? OR leases.holder = excluded.holder "
            "RETURNING holder",
            (self.name, self.holder, now + self.ttl, now),
        )
        return bool(rows)

    async def renew(self) -> bool:
        """Push the expiry on; False when the lease is no longer ours (it expired and was taken)."""
        rows = await self.db.write(
            "UPDATE leases SET expires = ? WHERE name = ? AND holder = ? RETURNING holder",
            (time.time() + self.ttl, self.name, self.holder),
        )
        return bool(rows)

    async def give_back(self) -> None:
        """Free the lease (if still ours)."""
        await self.db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (self.name, self.holder))

    async def holder_now(self) -> str | None:
        """Who holds the lease now (None: nobody, or an expired holder)."""
        rows = await self.db.fetch(
            "SELECT holder FROM leases WHERE name = ? AND expires >= ?", (self.name, time.time())
        )
        return rows[0][0] if rows else None

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 4)
            try:
                if not await self.renew():
                    log.error("lease %r was lost (this process stalled past %.0f s)", self.name, self.ttl)
                    return
            except Unavailable as e:  # the store is away: try again next beat, before the lease expires
                log.warning("could not renew lease %r: %s", self.name, e)


@asynccontextmanager
async def warm_lease(db: Database, ttl: float = TTL) -> AsyncIterator[bool]:
    """``async with warm_lease(db) as held``: the warm-up's lease, recorded in ``warm_runs`` while held;
    ``held`` is False when another process is warming (do nothing then)."""
    lease = Lease(db, "warm", ttl)
    if not await lease.take():
        log.info("another process (%s) is warming this store; not warming here", await lease.holder_now())
        yield False
        return
    run = await db.insert(
        "INSERT INTO warm_runs (holder, started) VALUES (?, ?)", (lease.holder, time.time())
    )
    beat = asyncio.create_task(lease._heartbeat())
    try:
        yield True
    finally:
        beat.cancel()
        with suppress(asyncio.CancelledError):
            await beat
        await db.execute("UPDATE warm_runs SET ended = ? WHERE id = ?", (time.time(), run))
        await lease.give_back()
