"""Work only one process at a time may do on a store, held as a row in ``leases``: the warm-up, and a
trainer's claim on its jobs (``process:NAME``).

A lease is taken in one statement (an upsert that succeeds only when the row is free, expired, or already
ours), renewed while the work goes on (the warm-up after each batch, a trainer at each look at the store),
and given back at the end. A process that dies stops renewing: its lease expires ``ttl`` seconds after its
last renewal and the next process takes it. No background task renews it (a task sleeping forever would
also keep a simulated Discord from ever settling). Each warm-up is recorded in ``warm_runs``, so overlaps
can be checked from the store afterwards.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from linernotes.bot.storage import Database

log = logging.getLogger(__name__)
TTL = 120.0  # seconds a process lease outlives its last renewal (how soon a dead trainer's jobs are failed)
# A warm-up renews its lease between batches, and one batch may take minutes on a CPU: a dead process's
# warm-up blocks the others for at most this long.
WARM_TTL = 600.0


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


@asynccontextmanager
async def warm_lease(db: Database, ttl: float = WARM_TTL) -> AsyncIterator[Lease | None]:
    """``async with warm_lease(db) as lease``: the warm-up's lease (renew it between batches), recorded in
    ``warm_runs`` while held; None when another process is warming (do nothing then)."""
    lease = Lease(db, "warm", ttl)
    if not await lease.take():
        log.info("another process (%s) is warming this store; not warming here", await lease.holder_now())
        yield None
        return
    try:
        run = await db.insert(
            "INSERT INTO warm_runs (holder, started) VALUES (?, ?)", (lease.holder, time.time())
        )
        try:
            yield lease
        finally:
            await db.execute("UPDATE warm_runs SET ended = ? WHERE id = ?", (time.time(), run))
    finally:
        await lease.give_back()
