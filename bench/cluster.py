"""Two bot processes on one PostgreSQL store: acknowledgements, cache hits, and what must hold across them.

Two real OS processes (``multiprocessing``, spawned) each run the real bot (``create_bot``) in a SimCord
env of their own (their own guilds, channels and members), on one PostgreSQL store (a throwaway server
started in a temp dir, as the tests start theirs) and one generation backend: the repo's fake
OpenAI-compatible completions server (``tests/model/openai_server.py``) in this process, over a tiny
model trained for the run (the ``tiny`` recipe, fp32) unless ``--checkpoint`` is given; the bots run
with ``backend = "openai"``, so no model runs in them. Before the run, process 0 fills the cache with
``--stock`` generations of one review key (16 real texts, stored repeatedly). The two processes meet at
a barrier before each phase, so each phase starts at the same instant in both. Measured in one run:

- bursts: ``--commands`` members (half in each process, each process one new channel) send a command at
  the same instant, rounds repeated (``--rounds``): half ``/review`` of the stocked key (cache hits taken
  from one cache by both processes at once), half ``/lyrics`` with a seed line (always generated:
  deferred and queued). The bot's default limits apply: once 64 jobs wait, the rest are refused ("the
  generator is busy"), the reviews among them too (the bot checks for room before it looks in the
  cache). Per interaction, the seconds from its creation to the bot's first response (an answer, a defer
  or a refusal), which Discord wants within 3 s; p99 over both processes' interactions per round, median
  over rounds; also per kind of response, and whether every deferred one got its generated answer;
- cache hit: ``--hits`` ``/review`` of the stocked key in each process, one at a time, both processes at
  once; seconds from the command to the answer (the interaction's first response, which carries the
  generation), and to the end of the bot's handling (reactions added, demand counted);
- served twice: no generation delivered twice to one channel, from the store (``deliveries`` with
  ``via = 'discord'`` grouped by generation and channel);
- votes: every member who got a cached review (in a burst or one at a time) rates it, and ``--fans``
  voters who are members in both processes' servers (the same Discord users) rate every generation served
  as a cached review (one of its messages) in both at the same moment, 👍 in one process and 👎 in the other (walking the generations in the same
  order, so one voter's two votes on one generation race across processes). Every reaction sent must be
  one ``reactions`` row, and every (generation, voter) one ``ratings`` row holding the vote of that
  voter's newest reaction;
- warm-up: both processes run the bot's warm job (``warm_job``, at most ``--warm-limit`` generations a
  run) again and again for the whole run; from ``warm_runs``, no two runs overlap, and runs per process.

SimCord numbers everything from one fixed instant, so two envs would hand out the same ids; process 1's
clock is moved a day on (``advance_time``) before it builds its world, so its channels, members and
messages have ids of their own, as in one Discord. The fans are created before that, so they get the same
ids in both envs (both are checked).

SimCord's own bookkeeping grows with the timers a bot arms and cancels, and asyncpg arms one per query and
per pooled connection lent (bench/serve.py, on SQLite, does not see this): a settle checks every pending
task against every timer handle in the loop, and SimCord keeps a record of each cancelled timer until the
next settle, scanning them as each callback finishes. Timed through settles, 250 cached reviews asked at
once in one channel of one process were all answered only after 17-56 s, and hits one at a time slowed
from about 8 ms to 30 ms (p50) as a run went on. So nothing here waits through a settle (``answered``,
``idle`` and ``quiet`` poll the bot's tasks; a settle would also sit out asyncpg's 300 s idle-connection
timers) and those waits forget cancelled timers as a settle would (``tidy``): the same 250 are then
answered within 1.6 s (SQLite: 0.8 s), and hits stay near 5 ms. Ends with
``RESULT cluster_ack_p99_s <median over rounds> target < 3``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PROCESSES = 2
ACK_LIMIT = 3.0  # seconds: Discord's window for an interaction's first response
HIT_LIMIT = 0.050  # seconds, p99 of a cache hit's answer
DAY = 86_400.0  # how far each process's SimCord clock is moved on from the one before (ids of its own)
BARRIER_TIMEOUT = 1800.0  # seconds a process waits for the other at a barrier before giving up
TEXTS = 16  # real texts the stock is made of
LABELS = {
    "answered": "cached answer",
    "deferred": "defer (generated after)",
    "refused": "refusal (queue full)",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- in each bot process ----------------------------------------------------------------------------


@contextmanager
def acknowledgements() -> Iterator[dict[int, tuple[float, str]]]:
    """Record when and how each interaction (by id) gets its first response: ``answered`` (a message),
    ``refused`` (an ephemeral message: a full queue, a limit) or ``deferred`` (a miss, generated after)."""
    import discord

    acked: dict[int, tuple[float, str]] = {}
    originals = {name: getattr(discord.InteractionResponse, name) for name in ("send_message", "defer")}

    def timed(name, original):
        async def respond(self, *args, **kwargs):
            result = await original(self, *args, **kwargs)
            how = "deferred" if name == "defer" else "refused" if kwargs.get("ephemeral") else "answered"
            acked.setdefault(self._parent.id, (time.perf_counter(), how))
            return result

        return respond

    for name, original in originals.items():
        setattr(discord.InteractionResponse, name, timed(name, original))
    try:
        yield acked
    finally:
        for name, original in originals.items():
            setattr(discord.InteractionResponse, name, original)


class Warnings(logging.Handler):
    """Keeps what the bot logs at WARNING and above (a concurrency problem shows here first), and any
    library's errors; not discord.py's start-up warnings about voice and intents under SimCord."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("linernotes") or record.levelno >= logging.ERROR:
            self.messages.append(f"{record.name}: {record.getMessage()}"[:300])


@contextmanager
def unsettled(env) -> Iterator[None]:
    """SimCord settles after each actor call (one at a time); skip those per-call settles (private API, as
    in the tests' ``burst`` helper and bench/serve.py) so every call is emitted before the bot runs any."""
    settle = env._settle_internal

    async def later(**_: object) -> None:
        return None

    env._settle_internal = later
    try:
        yield
    finally:
        env._settle_internal = settle


def tidy(env) -> None:
    """Forget the bot's cancelled timers, as SimCord's settle does (``_active_callbacks``), and cancel their
    real-clock fallbacks, which would only find them cancelled when they fire. SimCord keeps a record of
    each timer until a settle, and a fallback handle in the loop until the timer's time; asyncpg arms and
    cancels a timer for every query (its command timeout, 60 s) and every pooled connection it lends (its
    idle timeout, 300 s), so between settles the records pile up, and each finished callback's record is
    looked up among them all."""
    work = env._work
    live = []
    for record in work.callbacks:
        if record.handle is not None and not record.handle.cancelled():
            live.append(record)
        elif record.real_handle is not None:
            record.real_handle.cancel()
    work.callbacks = live


async def answered(env, acked: dict, ids: list[int], limit: float = 600.0) -> None:
    """Wait until every interaction in ``ids`` has had its first response (a plain wait: SimCord's settle
    checks every pending task against every timer handle in the loop on each turn, which slows the loop it
    waits on; asyncpg's per-query timeouts keep thousands of handles there)."""
    deadline = time.perf_counter() + limit
    while not all(i in acked for i in ids):
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{sum(i not in acked for i in ids)} interactions never acknowledged")
        tidy(env)
        await asyncio.sleep(0.001)


async def idle(env, limit: float = 60.0, still: float = 0.0, poll: float = 0.001) -> None:
    """Wait until no task of the bot's is running (``_work``: SimCord's private record of them), and none
    has for ``still`` seconds on end, looking every ``poll`` seconds."""
    deadline = time.perf_counter() + limit
    calm_since = None
    while True:
        now = time.perf_counter()
        if any(not t.done() for t in env._work.tasks):
            calm_since = None
        else:
            calm_since = now if calm_since is None else calm_since
            if now - calm_since >= still:
                return
        if now > deadline:
            raise TimeoutError("the bot is still busy")
        tidy(env)
        await asyncio.sleep(poll)


async def quiet(env) -> None:
    """Wait until the bot finished everything the last calls started: ``idle`` for half a second on end.
    Not SimCord's settle: it also waits for every bot-owned timer, asyncpg's 300 s idle-connection timers
    among them, so each settle after a phase sat those out in real time (5 minutes a phase, the machine
    idle)."""
    await idle(env, limit=1800.0, still=0.5, poll=0.01)


async def meet(barrier) -> None:
    """Wait for the other process (the event loop keeps running meanwhile)."""
    await asyncio.to_thread(barrier.wait)


class WarmLoop:
    """The bot's warm job, run again and again until stopped (both processes do this at once)."""

    def __init__(self, bot, every: float) -> None:
        self.bot, self.every, self.calls, self.stored = bot, every, 0, 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.stored += await self.bot.warm_job()
            self.calls += 1
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.every)

    async def stop(self) -> dict[str, int]:
        self._stop.set()
        assert self._task is not None
        await self._task
        return {"calls": self.calls, "stored": self.stored}


@dataclass
class World:
    """One process's Discord: its server, and the voters it shares with the other process."""

    index: int
    guild: object
    fans: list = field(default_factory=list)


async def make_world(env, index: int, fans: int) -> World:
    """The fans first (the same ids in every env), then this process's own clock and server."""
    users = [env.create_user(f"fan{j}") for j in range(fans)]
    if index:
        await env.advance_time(index * DAY)
    guild = env.create_guild(f"server of process {index}")
    return World(index, guild, [guild.add_member(user) for user in users])


async def stock(bot, n: int) -> None:
    """``n`` cached generations for the review key the bursts ask for: ``TEXTS`` real ones, stored repeatedly."""
    from linernotes.bot.cache import key_for
    from linernotes.model.config import Sampling
    from linernotes.model.generator import Request

    tags = bot.card.check_request("review", review_options(bot))
    key = key_for("review", tags, bot.config.score_bucket)
    requests = [
        Request("review", key.tags, sampling=Sampling(seed=i, max_new_tokens=60)) for i in range(TEXTS)
    ]
    results = await bot.generate(requests)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    for i in range(n):
        await bot.keep(results[i % TEXTS], key.key, "warm")


def review_options(bot) -> dict:
    return {"genre": bot.card.values("review", "genre")[0], "score": 7.5}


async def burst(env, world: World, size: int, r: int, acked: dict, barrier) -> dict:
    """``size`` members of a new channel send a command at the same instant (half ``/review`` hits, half
    seeded ``/lyrics``), at the same moment as the other process; acknowledgement seconds, how each was
    acknowledged, how long emitting them took, and the cached reviews answered (member, message)."""
    channel = world.guild.create_text_channel(f"burst-{r}")
    members = [world.guild.add_member(env.create_user(f"p{world.index}r{r}u{i}")) for i in range(size)]
    review = review_options(env.bot)
    sent = []
    await meet(barrier)
    with unsettled(env):
        for i, member in enumerate(members):
            if i % 2:
                name, options = "review", review
            else:
                name, options = (
                    "lyrics",
                    {"part": "chorus", "seed": f"line {i} of round {r} in {world.index}"},
                )
            sent.append((member, name, await member.slash(channel, name, **options), time.perf_counter()))
    await answered(env, acked, [result._interaction.id for _, _, result, _ in sent])
    await quiet(env)
    acks = [
        (acked[result._interaction.id][0] - at, acked[result._interaction.id][1]) for *_, result, at in sent
    ]
    answers = [
        (member, result.response)
        for (member, name, result, _), (_, how) in zip(sent, acks, strict=True)
        if name == "review" and how == "answered"
    ]
    return {"acks": acks, "emitted": sent[-1][3] - sent[0][3], "answers": answers}


async def hits(env, world: World, n: int, acked: dict) -> dict:
    """``n`` ``/review`` hits one at a time in a new channel: seconds to the answer, and to the end of the
    bot's work on it; the answers (member, message). Each is waited for without SimCord's settle (see
    ``idle``), which would be timed with it."""
    channel = world.guild.create_text_channel("hits")
    members = [world.guild.add_member(env.create_user(f"p{world.index}hit{i}")) for i in range(8)]
    review = review_options(env.bot)
    to_answer, to_end, answers = [], [], []
    for i in range(n):
        member = members[i % len(members)]
        started = time.perf_counter()
        with unsettled(env):
            result = await member.slash(channel, "review", **review)
        await answered(env, acked, [result._interaction.id])
        await idle(env)
        to_end.append(time.perf_counter() - started)
        at, how = acked[result._interaction.id]
        to_answer.append(at - started)
        if how == "answered":
            answers.append((member, result.response))
    return {"answer": to_answer, "end": to_end, "not_hits": n - len(answers), "answers": answers}


def generation_of(message) -> int:
    """The generation number in an answer's footer (``#123 · model · ...``)."""
    from linernotes.bot.embeds import generation_id

    return generation_id(message.embeds[0])


async def vote(env, world: World, answers: list, barrier) -> list[tuple[int, int, str]]:
    """Every member rates the review they got; every fan rates every generation served here (👍 in process 0,
    👎 in process 1), generations in ascending order in both processes, all at once; (message, user,
    emoji) of each reaction sent."""
    thumbs = env.bot.config.reactions
    calls = [(member, message, thumbs[i % 2]) for i, (member, message) in enumerate(answers)]
    # Fans rate each generation once here (its first message): the race across processes is per
    # (generation, voter), and a fan rating every message would grow with the answers, not the race.
    first = {generation_of(message): message for _, message in reversed(answers)}
    calls += [(fan, message, thumbs[world.index % 2]) for message in first.values() for fan in world.fans]
    calls.sort(key=lambda c: generation_of(c[1]))
    await meet(barrier)
    with unsettled(env):
        for member, message, emoji in calls:
            await member.react(message, emoji)
    await quiet(env)
    return [(message.id, member.id, emoji) for member, message, emoji in calls]


def refusals_and_errors(errors: list[BaseException]) -> tuple[int, list[str]]:
    """SimCord records every exception a command raised, the refusals of a full queue too (the bot tells
    the user: "the generator is busy"): how many of those, and the others (which would be bugs)."""
    from linernotes.model.worker import QueueFull

    refused = [e for e in errors if isinstance(getattr(e, "original", None), QueueFull)]
    return len(refused), [repr(e)[:300] for e in errors if e not in refused]


def bot_settings(plan: dict) -> dict:
    """The bot's settings: the shared store and completions server; commands synced in every env (each is
    its own Discord, where the store remembers one sync for the application); no scheduled warming (the
    bench runs the warm job itself); no server models (not measured here)."""
    return {
        "backend": "openai",
        "backend_url": plan["backend_url"],
        "sync": "always",
        "warm_interval": 0,
        "warm_limit": plan["warm_limit"],
        "per_key": 1,
        "hot_per_key": 1,
        "cooldown": 0,
        "min_chars": 1,
        "server_models": False,
        "shard_count": 1,
    }


async def bot_process(index: int, plan: dict, barrier) -> dict:
    """One bot process's run: its world, then each phase at the same moment as the other process."""
    import simcord

    from linernotes.bot import create_bot

    bot = create_bot(plan["checkpoint"], plan["db"], **bot_settings(plan))
    out: dict = {"index": index, "pid": os.getpid()}
    with acknowledgements() as acked:
        async with simcord.run(bot, check_errors=False) as env:
            world = await make_world(env, index, plan["fans"])
            out["fans"] = [fan.id for fan in world.fans]
            if index == 0:
                await stock(bot, plan["stock"])
            await meet(barrier)
            warming = WarmLoop(bot, plan["warm_every"])
            warming.start()
            size = plan["commands"] // PROCESSES
            bursts = []
            for r in range(plan["rounds"]):
                bursts.append(await burst(env, world, size, r, acked, barrier))
                progress(index, f"burst {r + 1} of {plan['rounds']} done")
            await meet(barrier)
            out["hits"] = await hits(env, world, plan["hits"], acked)
            progress(index, "hits done")
            answers = [a for b in [*bursts, out["hits"]] for a in b.pop("answers")]
            out["reactions"] = await vote(env, world, answers, barrier)
            progress(index, f"{len(out['reactions'])} reactions sent and handled")
            out["warm"] = await warming.stop()
            await quiet(env)
            out["bursts"] = bursts
            out["refusals"], out["errors"] = refusals_and_errors(env.errors)
    await bot.close()
    return out


def progress(index: int, what: str) -> None:
    """A line on stderr as each phase ends (the figures come at the end, on stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] process {index}: {what}", file=sys.stderr, flush=True)


def child(index: int, plan: dict, barrier, results) -> None:
    """A bot process: run, and send back the figures (or the error, after breaking the barrier so the
    other process does not wait for this one)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.disable(logging.INFO)
    caught = Warnings()
    logging.getLogger().addHandler(caught)
    try:
        out = asyncio.run(bot_process(index, plan, barrier))
    except BaseException as e:
        barrier.abort()
        import traceback

        results.put({"index": index, "failed": traceback.format_exc()})
        raise SystemExit(1) from e
    out["warnings"] = caught.messages
    results.put(out)


# --- this process: the store, the completions server, the two bot processes, the checks -------------


def build_checkpoint(tmp: Path) -> Path:
    """The tiny recipe on the bundled corpus, exported in fp32 (what the completions server runs)."""
    from linernotes.training.pipeline import build

    built = build([REPO / "data" / "sample"], tmp, "tiny", precision="fp32", steps=60)
    assert built.checkpoint is not None
    return built.checkpoint


def run_processes(plan: dict) -> list[dict]:
    """Start the bot processes, wait for both, and return what each sent back (in process order)."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES, timeout=BARRIER_TIMEOUT)
    results = ctx.Queue()
    procs = [ctx.Process(target=child, args=(i, plan, barrier, results)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    out: list[dict] = []
    try:
        while len(out) < PROCESSES:
            try:
                out.append(results.get(timeout=5))
            except Exception:  # queue.Empty: is anyone still running?
                if not any(p.is_alive() for p in procs):
                    break
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    failed = [o["failed"] for o in out if "failed" in o]
    if failed or len(out) < PROCESSES:
        sys.exit("a bot process failed:\n" + ("\n".join(failed) or "it died without a word"))
    return sorted(out, key=lambda o: o["index"])


async def votes_check(db, processes: list[dict]) -> dict:
    """Reactions sent against the store's ``reactions`` and ``ratings`` rows."""
    thumbs = {"👍": 1, "👎": -1}
    of_message = {r[0]: r[1] for r in await db.fetch("SELECT message_id, generation_id FROM deliveries")}
    sent = {
        (message, db.user_hash(user), thumbs[emoji])
        for p in processes
        for message, user, emoji in p["reactions"]
    }
    rows = {tuple(r) for r in await db.fetch("SELECT message_id, user_hash, vote FROM reactions")}
    pairs = {(of_message.get(m), u) for m, u, _ in sent}
    ratings = {
        (r[0], r[1]): r[2] for r in await db.fetch("SELECT generation_id, user_hash, vote FROM ratings")
    }
    newest = await db.fetch(
        "SELECT r.generation_id, r.user_hash, r.vote FROM reactions r WHERE r.seq = (SELECT MAX(x.seq) "
        "FROM reactions x WHERE x.generation_id = r.generation_id AND x.user_hash = r.user_hash)"
    )
    fans = set(processes[0]["fans"])
    by_process = [{(of_message.get(m), u) for m, u, _ in p["reactions"] if u in fans} for p in processes]
    messages = [{m for m, _, _ in p["reactions"]} for p in processes]
    return {
        "same_fans": all(p["fans"] == processes[0]["fans"] for p in processes),
        "one_id_two_messages": len(set.intersection(*messages)),
        "sent": len(sent),
        "rows": len(rows),
        "missing": len(sent - rows),
        "extra": len(rows - sent),
        "pairs": len(pairs),
        "ratings": len(ratings),
        "unrated": len(pairs - set(ratings)),
        "extra_ratings": len(set(ratings) - pairs),
        "disagree": sum(ratings.get((g, u)) != v for g, u, v in newest),
        "both": len(set.intersection(*by_process)),
    }


async def warm_check(db, processes: list[dict]) -> dict:
    """Warm-up runs from ``warm_runs``: overlaps (a run starting before an earlier one ended, or never
    ending) and runs per process."""
    runs = await db.fetch("SELECT holder, started, ended FROM warm_runs ORDER BY started")
    overlaps, last_end = 0, 0.0
    for _, started, ended in runs:
        overlaps += started < last_end or ended is None
        last_end = max(last_end, ended or float("inf"))
    per = [sum(holder.split(":")[1] == str(p["pid"]) for holder, _, _ in runs) for p in processes]
    held = await db.fetch("SELECT COUNT(*) FROM leases")
    return {"runs": len(runs), "overlaps": overlaps, "per_process": per, "leases_left": held[0][0]}


async def store_figures(url: str, processes: list[dict]) -> dict:
    """What the store says after the run: deliveries served twice to a channel, misses answered with what
    was generated for them, votes, warm-up runs."""
    from linernotes.bot.storage import Database

    db = Database(url)
    await db.open()
    try:
        twice = await db.fetch(
            "SELECT COUNT(*) FROM (SELECT generation_id, channel_id FROM deliveries WHERE via = 'discord' "
            "GROUP BY generation_id, channel_id HAVING COUNT(*) > 1) t"
        )
        served = await db.fetch("SELECT COUNT(*) FROM deliveries WHERE via = 'discord'")
        generated = await db.fetch(
            "SELECT COUNT(*) FROM deliveries d JOIN generations g ON g.id = d.generation_id "
            "WHERE g.origin = 'request' AND d.message_id IS NOT NULL"
        )
        return {
            "twice": twice[0][0],
            "served": served[0][0],
            "generated": generated[0][0],
            "votes": await votes_check(db, processes),
            "warm": await warm_check(db, processes),
        }
    finally:
        await db.close()


def run(checkpoint: Path, a: argparse.Namespace) -> dict:
    """A PostgreSQL server and the completions server around the two bot processes; every figure."""
    from tests.model.openai_server import CompletionServer
    from tests.postgres import PostgresServer, why_not

    reason = why_not()
    if reason:
        sys.exit(f"no PostgreSQL server can start here: {reason}")
    server = PostgresServer().start()
    try:
        with CompletionServer(checkpoint) as completions:
            plan = {
                "checkpoint": str(checkpoint),
                "db": server.url(),
                "backend_url": completions.url,
                **{
                    k: getattr(a, k)
                    for k in (
                        "commands",
                        "rounds",
                        "hits",
                        "stock",
                        "fans",
                        "warm_limit",
                        "warm_every",
                    )
                },
            }
            load = os.getloadavg()[0]
            started = time.perf_counter()
            processes = run_processes(plan)
            wall = time.perf_counter() - started
            completed = len(completions.requests)
        figures = asyncio.run(store_figures(server.url(), processes))
    finally:
        server.remove()
    return figures | {
        "processes": processes,
        "wall": wall,
        "load": (load, os.getloadavg()[0]),
        "completions": completed,
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report_bursts(f: dict, a: argparse.Namespace) -> float:
    """The bursts' lines; the headline (median over rounds of the p99 over both processes)."""
    rounds = list(zip(*(p["bursts"] for p in f["processes"]), strict=True))
    acks = [[t for b in r for t, _ in b["acks"]] for r in rounds]
    per_round = [pct(times, 0.99) for times in acks]
    p99 = statistics.median(per_round)
    late = sum(t > ACK_LIMIT for times in acks for t in times)
    print(
        f"burst of {a.commands} simultaneous commands ({a.commands // PROCESSES} in each process), {len(rounds)} "
        f"rounds: acknowledgement p50 {statistics.median(statistics.median(t) for t in acks):.2f} s, p99 "
        f"{p99:.2f} s (per round {', '.join(f'{p:.2f}' for p in per_round)}), max {max(map(max, acks)):.2f} s; "
        f"{late} of {sum(map(len, acks))} after {ACK_LIMIT:g} s; target p99 < {ACK_LIMIT:g} s: {verdict(p99 < ACK_LIMIT)}"
    )
    kinds: dict[str, list[float]] = {}
    for r in rounds:
        for b in r:
            for t, how in b["acks"]:
                kinds.setdefault(how, []).append(t)
    emitted = [b["emitted"] for r in rounds for b in r]
    print(
        "  by how: "
        + "; ".join(
            f"{LABELS[how]} {len(ts)} (p50 {statistics.median(ts):.2f} s, p99 {pct(ts, 0.99):.2f} s)"
            for how, ts in sorted(kinds.items())
        )
        + f"; emitting a process's {a.commands // PROCESSES} took {statistics.median(emitted):.2f} s (median)"
    )
    deferred = len(kinds.get("deferred", []))
    print(f"  deferred and then answered with a generated text: {f['generated']} of {deferred}")
    return p99


def report_hits(f: dict, a: argparse.Namespace) -> None:
    answer = [t * 1000 for p in f["processes"] for t in p["hits"]["answer"]]
    end = [t * 1000 for p in f["processes"] for t in p["hits"]["end"]]
    not_hits = sum(p["hits"]["not_hits"] for p in f["processes"])
    print(
        f"cache hit, /review one at a time in each process, both at once ({a.hits} per process): answer p50 "
        f"{statistics.median(answer):.1f} ms, p99 {pct(answer, 0.99):.1f} ms; whole handling (reactions added, "
        f"demand counted) p50 {statistics.median(end):.1f} ms, p99 {pct(end, 0.99):.1f} ms; {not_hits} not from "
        f"the cache; target answer p99 < {HIT_LIMIT * 1000:g} ms: "
        f"{verdict(pct(answer, 0.99) < HIT_LIMIT * 1000 and not not_hits)}"
    )


def report_store(f: dict, a: argparse.Namespace) -> None:
    """The lines checked from the store: served twice, votes, warm-up runs."""
    print(
        f"served twice to one channel: {f['twice']} (generation, channel) pairs delivered more than once, "
        f"among {f['served']} deliveries; target 0: {verdict(f['twice'] == 0)}"
    )
    v = f["votes"]
    lost = v["missing"] + v["extra"] + v["unrated"] + v["extra_ratings"] + v["disagree"]
    lost += v["one_id_two_messages"] + (not v["same_fans"])  # the check itself would be unsound
    print(
        f"votes: {v['sent']} reactions sent at once in both processes ({a.fans} voters in both, the same "
        f"user ids there: {'yes' if v['same_fans'] else 'NO'}; messages of both with one id: "
        f"{v['one_id_two_messages']}; "
        f"{v['both']} (generation, voter) pairs voted on from both processes): {v['rows']} reactions rows "
        f"({v['missing']} missing, {v['extra']} extra), {v['ratings']} ratings for {v['pairs']} "
        f"(generation, voter) pairs ({v['unrated']} missing, {v['extra_ratings']} extra, {v['disagree']} "
        f"not the newest reaction's vote); lost {lost} target 0: {verdict(lost == 0)}"
    )
    w = f["warm"]
    calls = [p["warm"]["calls"] for p in f["processes"]]
    stored = sum(p["warm"]["stored"] for p in f["processes"])
    held = [c - n for c, n in zip(calls, w["per_process"], strict=True)]
    print(
        f"warm-up: the warm job called {' and '.join(map(str, calls))} times; {w['runs']} runs recorded "
        f"({' and '.join(map(str, w['per_process']))} per process; {' and '.join(map(str, held))} calls found "
        f"the other process warming), {stored} generations stored; runs "
        f"overlapping {w['overlaps']}, leases left {w['leases_left']}; target 0 overlaps: "
        f"{verdict(w['overlaps'] == 0 and w['leases_left'] == 0 and all(w['per_process']))}"
    )


def report(f: dict, a: argparse.Namespace, checkpoint_name: str) -> None:
    """Print every figure, then the RESULT line."""
    before, after = f["load"]
    print(
        f"{PROCESSES} bot processes (SimCord each) on one PostgreSQL store; completions server in the parent "
        f"({checkpoint_name}, {a.threads} torch threads, {f['completions']} completions); {os.cpu_count()} cores, "
        f"load average {before:.2f} before, {after:.2f} after; {f['wall']:.0f} s"
    )
    p99 = report_bursts(f, a)
    report_hits(f, a)
    report_store(f, a)
    for p in f["processes"]:
        logged = Counter(p["warnings"])
        print(
            f"process {p['index']}: {p['refusals']} refusals of a full queue raised, {len(p['errors'])} other "
            f"errors in the bot, {len(p['warnings'])} warnings logged"
            + "".join(f"\n  {n} x {message}" for message, n in logged.most_common(5))
            + "".join(f"\n  {error}" for error in p["errors"][:5])
        )
    print(f"RESULT cluster_ack_p99_s {p99:.2f} target < {ACK_LIMIT:g}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="an exported checkpoint (default: train a tiny one)")
    p.add_argument(
        "--commands", type=int, default=1000, help="commands per burst, split across the processes"
    )
    p.add_argument("--rounds", type=int, default=3, help="bursts")
    p.add_argument("--hits", type=int, default=200, help="cache hits one at a time, per process")
    p.add_argument("--stock", type=int, default=300, help="cached generations of the key the bursts ask for")
    p.add_argument("--fans", type=int, default=2, help="voters who are members in both processes' servers")
    p.add_argument("--warm-limit", type=int, default=8, help="generations per warm-up run at most")
    p.add_argument(
        "--warm-every", type=float, default=1.0, help="seconds between warm job calls, per process"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads of the completions server")
    a = p.parse_args()
    if a.stock < max(a.hits, a.commands // PROCESSES // 2):
        p.error("--stock must cover a burst's reviews in one process and --hits (one channel each)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.disable(logging.WARNING)
    import torch

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory() as tmp_dir:
        checkpoint = Path(a.checkpoint) if a.checkpoint else build_checkpoint(Path(tmp_dir))
        figures = run(checkpoint, a)
    report(figures, a, str(checkpoint) if a.checkpoint else "tiny (trained for this run), fp32")


if __name__ == "__main__":
    main()
