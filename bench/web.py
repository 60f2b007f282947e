"""The website under load: a hot key's burst, permalinks sustained, and showings that add up.

The server is ``linernotes web`` (the real command, in a process of its own, rate limit off) over a bot
database prepared here with ``--cached`` generations for one review key and ``--pages`` others; this
process is the client (aiohttp). Measured in one run:

- hot key: ``--burst`` requests for ``/api/review?genre=Metal&score=7.5`` sent at the same instant over
  connections opened beforehand; each request's time from send to its whole answer (p50/p99);
- the same requests from ``--clients`` concurrent clients one after another (what a busy site sees);
- permalinks: ``/g/<id>`` pages (HTML) from ``--clients`` concurrent clients for ``--seconds``; answers per
  second, p50/p99;
- showings: every 200 answer of the hot key is one web showing in the database, no more, no less, and no
  generation was served twice while one not yet served remained (checked after each burst).

Ends with ``RESULT web_hot_key_p99_ms <x> target < 50``, ``RESULT web_permalinks_rps <x> target >= 2000``
and ``RESULT web_showings_exact <yes|no> target yes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HOT = "/api/review?genre=Metal&score=7.5"
KEY = "review|Metal|7.5"


async def prepare(path: Path, cached: int, pages: int) -> list[str]:
    """A bot database with ``cached`` warmed generations of the hot key and ``pages`` of other keys; the
    public ids of the latter."""
    from linernotes.bot.storage import Database
    from linernotes.model.config import Sampling
    from linernotes.model.generator import Request, Result

    db = Database(path)
    await db.open()
    try:
        await db.set_meta("serving_model", "bench-model")
        ids = []
        for i in range(cached + pages):
            key, tags = (
                (KEY, {"genre": "Metal", "score": 7.5})
                if i < cached
                else ("review|Jazz|3.0", {"genre": "Jazz", "score": 3.0})
            )
            request = Request("review", tags, sampling=Sampling(seed=i))
            text = f"Review {i}: " + "a record of riffs and long quiet passages. " * 8
            ids.append(
                await db.add(Result(request, text, True, 1, "end", 80, 1.0, "bench-model"), key, "warm")
            )
        rows = await db.fetch(f"SELECT public_id FROM generations WHERE id > {cached} ORDER BY id")
        return [r[0] for r in rows]
    finally:
        await db.close()


async def showings(path: Path) -> Counter:
    """Web showings per generation row, as the database holds them."""
    from linernotes.bot.storage import Database

    db = Database(path)
    await db.open()
    try:
        rows = await db.fetch("SELECT generation_id, COUNT(*) FROM deliveries WHERE via = 'web' GROUP BY 1")
        return Counter({r[0]: r[1] for r in rows})
    finally:
        await db.close()


def start_server(path: Path, port: int, log: Path) -> subprocess.Popen:
    """``linernotes web`` on ``path``, waited for until it serves."""
    linernotes = Path(sys.executable).parent / "linernotes"
    cmd = [str(linernotes), "web", "--db", str(path), "--port", str(port), "--rate", "0"]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "Serving" in log.read_text():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"the site did not start:\n{log.read_text()}")


async def timed(session, url: str) -> tuple[float, int, str]:
    """One GET: (seconds to the whole answer, status, the answer's id, when it is JSON with one)."""
    started = time.perf_counter()
    async with session.get(url) as r:
        body = await r.read()
        found = (r.content_type == "application/json" and json.loads(body).get("id")) or ""
    return time.perf_counter() - started, r.status, found


async def burst(session, base: str, n: int) -> list[tuple[float, int, str]]:
    """``n`` hot-key requests sent at the same instant."""
    gate = asyncio.Event()

    async def one() -> tuple[float, int, str]:
        await gate.wait()
        return await timed(session, base + HOT)

    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    await asyncio.sleep(0.05)  # every task waits at the gate
    gate.set()
    return await asyncio.gather(*tasks)


async def closed_loop(
    session, urls: list[str], clients: int, seconds: float | None, total: int | None
) -> tuple[list[float], float]:
    """``clients`` clients, each sending its next request when the last is answered, for ``seconds`` or until
    ``total`` requests; (latencies, wall seconds)."""
    latencies: list[float] = []
    started = time.perf_counter()
    counter = iter(range(10**9))

    async def client() -> None:
        while True:
            i = next(counter)
            if (total is not None and i >= total) or (
                seconds is not None and time.perf_counter() - started > seconds
            ):
                return
            seconds_taken, status, _ = await timed(session, urls[i % len(urls)])
            assert status == 200, status
            latencies.append(seconds_taken)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def fair(counts: Counter, cached: int, served: int) -> bool:
    """Whether ``served`` showings over ``cached`` generations are spread as least-shown-first spreads them:
    each generation shown ``served // cached`` or one more times, none more while another has fewer."""
    per = [counts.get(i, 0) for i in range(1, cached + 1)]
    return sum(per) == served and max(per) - min(per) <= 1


async def measure(base: str, db: Path, args: argparse.Namespace, pages: list[str]) -> dict:
    """Every phase against the running server; the figures."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=args.burst, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        await burst_warmup(session, base, pages, args.burst)
        first = await burst(session, base, args.burst)
        counts = await showings(db)
        ok_first = all(s == 200 for _, s, _ in first) and len({i for _, _, i in first}) == args.burst
        exact_first = fair(counts, args.cached, args.burst)
        latencies, wall = await closed_loop(session, [base + HOT], args.clients, None, args.burst)
        counts = await showings(db)
        exact_second = fair(counts, args.cached, 2 * args.burst)
        page_lat, page_wall = await closed_loop(
            session, [f"{base}/g/{p}" for p in pages], args.clients, args.seconds, None
        )
    return {
        "burst": [t for t, _, _ in first],
        "burst_ok": ok_first,
        "exact": exact_first and exact_second,
        "clients": (latencies, wall),
        "pages": (page_lat, page_wall),
    }


async def burst_warmup(session, base: str, pages: list[str], n: int) -> None:
    """Open ``n`` connections (a burst of permalink pages, which count nothing) before the measured burst."""
    gate = asyncio.Event()

    async def one(i: int) -> None:
        await gate.wait()
        async with session.get(f"{base}/g/{pages[i % len(pages)]}") as r:
            await r.read()

    tasks = [asyncio.ensure_future(one(i)) for i in range(n)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(*tasks)


def report(figures: dict, args: argparse.Namespace) -> None:
    """Print every figure, then the RESULT lines."""
    burst_ms = figures["burst"]
    latencies, wall = figures["clients"]
    page_lat, page_wall = figures["pages"]
    rps = len(page_lat) / page_wall
    print(
        f"hot key, {args.burst} requests at once: p50 {pct(burst_ms, 50):.1f} ms, p99 {pct(burst_ms, 99):.1f} ms, "
        f"max {1000 * max(burst_ms):.1f} ms; all 200 and distinct: {figures['burst_ok']}"
    )
    print(
        f"hot key, {args.burst} requests from {args.clients} clients: p50 {pct(latencies, 50):.1f} ms, "
        f"p99 {pct(latencies, 99):.1f} ms, {len(latencies) / wall:.0f} requests/s"
    )
    print(
        f"permalink pages, {args.clients} clients for {args.seconds:g} s: {rps:.0f} requests/s, "
        f"p50 {pct(page_lat, 50):.1f} ms, p99 {pct(page_lat, 99):.1f} ms ({len(page_lat)} pages)"
    )
    print(
        f"showings add up and least-shown first held (after {args.burst} and {2 * args.burst} answers over "
        f"{args.cached} generations): {figures['exact']}"
    )
    print(f"RESULT web_hot_key_p99_ms {pct(burst_ms, 99):.1f} target < 50")
    print(f"RESULT web_permalinks_rps {rps:.0f} target >= 2000")
    print(
        f"RESULT web_showings_exact {'yes' if figures['exact'] and figures['burst_ok'] else 'no'} target yes"
    )


def main() -> None:
    """Prepare the database, start the server, measure, stop it, report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--burst", type=int, default=1000, help="hot-key requests sent at once")
    p.add_argument("--cached", type=int, default=1500, help="generations of the hot key (more than --burst)")
    p.add_argument("--pages", type=int, default=200, help="other generations, for the permalink phase")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients in the closed-loop phases")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the permalink phase")
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bot.sqlite3"
        pages = asyncio.run(prepare(db, args.cached, args.pages))
        server = start_server(db, args.port, Path(tmp) / "web.log")
        try:
            figures = asyncio.run(measure(f"http://127.0.0.1:{args.port}", db, args, pages))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    print(f"cores: {os.cpu_count()}; server: linernotes web (one process); client: this process (aiohttp)")
    report(figures, args)


if __name__ == "__main__":
    main()
