"""A client over its rate waits; others do not; the table of clients stays bounded."""

from __future__ import annotations

import pytest

from linernotes.bot.web.ratelimit import RateLimiter
from tests.bot.web.conftest import add


def test_a_burst_then_the_rate():
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.allow("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("a", now=0.0) == pytest.approx(0.5)  # empty: one token comes every 0.5 s
    assert limiter.allow("b", now=0.0) == 0.0  # another client has its own bucket
    assert limiter.allow("a", now=0.5) == 0.0 and limiter.allow("a", now=0.5) > 0
    assert RateLimiter(rate=0, burst=1).allow("a") == 0.0  # 0: no limit


def test_the_table_of_clients_is_bounded():
    limiter = RateLimiter(rate=1.0, burst=1, max_clients=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}", now=0.0)
    assert len(limiter._buckets) == 100


@pytest.mark.parametrize("web_settings", [{"port": 0, "rate": 1.0, "burst": 5}])
async def test_a_client_over_its_rate_is_told_when_to_retry(db, get):
    await add(db, "review|Metal|7.5", "A loud record.")
    statuses = [(await get("/api/g/" + "0" * 24)).status for _ in range(5)]
    assert statuses == [404] * 5
    refused = await get("/api/review")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "too many requests" in refused.body["error"]
    assert (await db.fetch("SELECT COUNT(*) FROM deliveries"))[0][0] == 0  # refused before any work
