"""Leases on both engines: one warm-up at a time across processes, taken over when its holder dies."""

from __future__ import annotations

import asyncio

import pytest

from linernotes.bot.leases import Lease, warm_lease
from linernotes.bot.storage import Database


@pytest.fixture
async def two(store):
    """Two processes' connections to one store."""
    dbs = [Database(store), Database(store)]
    for db in dbs:
        await db.open()
    yield dbs
    for db in dbs:
        await db.close()


async def test_a_lease_has_one_holder_until_given_back(two):
    a, b = Lease(two[0], "job"), Lease(two[1], "job")
    assert await a.take()
    assert not await b.take()
    assert await a.take()  # taking again what one holds is holding it
    assert await b.holder_now() == a.holder
    await a.give_back()
    assert await b.take() and not await a.renew()


async def test_a_dead_holders_lease_expires_and_a_live_ones_does_not(two):
    dead, live, waiting = Lease(two[0], "job", ttl=0.3), Lease(two[0], "other", ttl=0.3), Lease(two[1], "job")
    assert await dead.take() and await live.take()
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert await live.renew()  # a heartbeat
    assert await waiting.take()  # the dead one stopped renewing 0.45 s ago
    assert not await Lease(two[1], "other").take()


async def test_processes_warming_together_take_turns(two):
    held: list[bool] = []

    async def run(db: Database) -> None:
        async with warm_lease(db, ttl=0.4) as lease:
            held.append(lease is not None)
            for _ in range(3 if lease else 0):
                await asyncio.sleep(0.2)  # a batch
                assert await lease.renew()  # between batches: 0.6 s in all, longer than the ttl

    await asyncio.gather(run(two[0]), run(two[1]))
    assert sorted(held) == [False, True]
    await run(two[1])  # free again once the first is done
    runs = await two[0].fetch("SELECT started, ended FROM warm_runs ORDER BY started")
    assert len(runs) == 2 and all(end is not None for _, end in runs)
    assert runs[0][1] <= runs[1][0]  # never two at once
    assert await two[0].fetch("SELECT * FROM leases") == []
