"""The bot's store: the generation cache, deliveries, ratings, on SQLite (one file, the embedded default)
or PostgreSQL (several bot processes on one store; see ``bot.engines``).

User ids are never stored: a salted hash (the salt is random per database) identifies a voter.
Taking a cached generation is one statement, so two requests never take the same one, also from two
processes. Reactions that cannot be written are kept in memory and retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.bot.batch import Batcher
from linernotes.bot.engines import Engine, Row, StorageError, Unavailable, engine_for, is_postgres
from linernotes.bot.migrations import migrations
from linernotes.common.errors import InputError
from linernotes.model.generator import Result

log = logging.getLogger(__name__)
__all__ = ["Database", "StorageError", "Unavailable"]


@dataclass(frozen=True)
class Generation:
    """A stored generation."""

    id: int
    kind: str
    cache_key: str
    tags: dict[str, Any]
    seed_line: str | None
    text: str
    model_id: str
    ranked: int = 1  # drafts it was chosen from (warm-up with a ranker writes several)
    public_id: str | None = None  # its permalink's id (a random token; None only for rows never given one)


@dataclass(frozen=True)
class Scope:
    """Where a question is asked from: a server, or (outside servers) one channel. /show and /stats
    see only deliveries made there, so no server learns about another."""

    guild_id: int | None
    channel_id: int

    def where(self, alias: str = "d") -> tuple[str, tuple]:
        """A SQL condition on a deliveries table alias, with its parameters."""
        if self.guild_id is not None:
            return f"{alias}.guild_id = ?", (self.guild_id,)
        return f"{alias}.guild_id IS NULL AND {alias}.channel_id = ?", (self.channel_id,)


@dataclass(frozen=True)
class TakeRequest:
    """Who asks for a cached text, and where: one Discord take."""

    channel_id: int
    guild_id: int | None
    user_hash: str
    requested: dict[str, Any]


def _take_params(group: tuple[str, str], r: TakeRequest, n: int) -> tuple:
    model_id, cache_key = group
    return (model_id, cache_key, r.channel_id, r.channel_id, r.guild_id, r.user_hash, json.dumps(r.requested),
            time.time(), n)  # fmt: skip


@dataclass(frozen=True)
class Reaction:
    """A rating reaction added or removed (kept in memory while it cannot be written)."""

    message_id: int
    user_hash: str
    vote: int
    present: bool


# How often a generation was shown: every delivery counts, in Discord (sent or being sent) or on the web
# (``generations.shown``, kept by triggers on ``deliveries``: migration 7). The least-shown rule, shared by
# the bot's ``take`` and the web's (bot/web/store.py): fewest showings first, then the oldest.
SHOWN = "g.shown"
LEAST_SHOWN = f"{SHOWN}, g.id"
HOUR = 3600
EVERYWHERE = ("1 = 1", ())  # a condition that holds for every row
UP = "COUNT(*) FILTER (WHERE r.vote = 1)"  # approvals among ``ratings r``
DOWN = "COUNT(*) FILTER (WHERE r.vote = -1)"


def public_token() -> str:
    """A new permalink id: 96 random bits as 24 hex digits (as migration 7 gave older rows)."""
    return secrets.token_hex(12)


def lock_key(*parts: object) -> int:
    """A 63-bit number standing for ``parts``: the key of a lock across processes (``Transaction.lock``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


# A take: the least-shown generation of a key that a channel has not seen, chosen and recorded as a pending
# delivery in one statement; ``n`` tells a batch's rows apart (``_take_params``).
TAKE = (
    "WITH pick AS (SELECT g.id FROM generations g "
    "WHERE g.model_id = ? AND g.cache_key = ? AND g.private = 0 AND NOT EXISTS "
    "(SELECT 1 FROM deliveries d WHERE d.generation_id = g.id AND d.channel_id = ? AND d.via = 'discord') "
    f"ORDER BY {LEAST_SHOWN} LIMIT 1) "
    "INSERT INTO deliveries (generation_id, channel_id, guild_id, user_hash, requested, delivered) "
    "SELECT pick.id, ?, ?, ?, ?, ? FROM pick RETURNING id, generation_id, CAST(? AS INTEGER) AS n"
)


def take_lock(model_id: str, cache_key: str) -> int:
    """The lock every take of one model's cache key holds (Discord's and the web's, in any process)."""
    return lock_key("take", model_id, cache_key)


class Database:
    """Async access to the bot's store (``target``: a SQLite file's path, or a ``postgresql://`` URL)."""

    def __init__(self, target: str | Path) -> None:
        self.engine: Engine = engine_for(target)
        self.path = self.engine.label  # what messages name: a file, or the URL without its password
        self._salt = ""
        self.unsaved: list[Reaction] = []
        self._flushing = asyncio.Lock()
        # (model id, cache key) -> takes waiting for one transaction: (generation, delivery id) each. Only
        # where a batch's statements go in one round trip (PostgreSQL): SQLite's are a thread hop each on
        # the process's one connection, where each take keeps its own place in the connection's queue.
        self._takes: Batcher[tuple[str, str], TakeRequest, tuple[Generation, int]] | None = (
            Batcher(self._take_batch, lambda taken: self._give_back([d for _, d in taken]))
            if self.engine.dialect == "postgresql"
            else None
        )
        self.engine.reopened = self._prepare  # a SQLite file replaced under us is migrated

    @property
    def is_open(self) -> bool:
        """Whether the store is connected."""
        return self.engine.is_open

    @property
    def shared(self) -> bool:
        """Whether other processes (on other machines) may use this store at the same time."""
        return self.engine.dialect == "postgresql"

    async def open(self) -> None:
        """Connect, apply pending migrations, and prove the store writable (idempotent).

        Any failure closes the connection again (its thread would otherwise keep the process alive)
        and raises a ``StorageError`` naming the store."""
        await self.engine.open()
        try:
            await self._prepare()
        except BaseException:
            await self.engine.close()
            raise

    async def _prepare(self) -> None:
        await self.migrate()
        self._salt = await self._meta("user_salt") or await self._first_meta(
            "user_salt", secrets.token_hex(16)
        )
        # A read-only file opens and reads fine; only a write tells, and every request writes.
        await self._set_meta("opened", str(time.time()))

    async def close(self) -> None:
        """Close the connection (trying reactions still unsaved one last time)."""
        if self.unsaved:
            await self.flush_reactions()
            if self.unsaved:
                log.error("%d rating reactions could not be saved to %s", len(self.unsaved), self.path)
        await self.engine.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement on its own (committed at once)."""
        await self.engine.fetch(sql, params)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one query and return its rows."""
        return await self.engine.fetch(sql, params)

    async def write(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one writing statement (``... RETURNING``) on its own and return the rows it returned.

        One statement is atomic: what it reads and what it writes are one step (also against other
        processes, where the statement says how: see ``take``)."""
        return await self.engine.fetch(sql, params)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one ``INSERT`` and return the new row's id."""
        rows = await self.engine.fetch(f"{sql} RETURNING id", params)
        return int(rows[0][0])

    async def execute_all(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run several statements as one transaction: all of them, or none."""
        await self.engine.run(statements)

    async def migrate(self) -> list[int]:
        """Apply migrations newer than the database; returns the versions applied."""
        await self.engine.start_migrations()
        done = set(await self.versions())
        applied = []
        for version, name, sql in migrations(self.engine.dialect):
            if version not in done and await self.engine.apply(version, name, sql):
                applied.append(version)
        return applied

    async def versions(self) -> list[int]:
        """Applied migration versions."""
        return [r[0] for r in await self.fetch("SELECT version FROM schema_migrations ORDER BY 1")]

    async def _meta(self, key: str) -> str | None:
        rows = await self.fetch("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def _set_meta(self, key: str, value: str) -> str:
        await self.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        return value

    async def _first_meta(self, key: str, value: str) -> str:
        """Store ``value`` unless another process stored one first; returns the one stored."""
        await self.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
        found = await self._meta(key)
        assert found is not None
        return found

    async def get_meta(self, key: str) -> str | None:
        """A stored setting (e.g. the hash of the last synced command set)."""
        return await self._meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        await self._set_meta(key, value)

    def user_hash(self, user_id: int) -> str:
        """The salted hash that stands for a user in this database."""
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()[:24]

    # --- generations --------------------------------------------------------------------------

    async def add(self, result: Result, cache_key: str, origin: str, private: bool = False) -> int:
        """Store a finished generation; returns its id. A private one (seeded, or asked for with the
        user's own words) is never served from the cache."""
        r = result.request
        return await self.insert(
            "INSERT INTO generations (kind, cache_key, tags, seed_line, text, model_id, sampling, seed, origin, "
            "created, private, ranked, public_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.kind,
                cache_key,
                json.dumps(r.tags),
                r.seed_line,
                result.text,
                result.model_id,
                json.dumps(r.sampling.to_dict()),
                r.sampling.seed,
                origin,
                time.time(),
                int(private or r.seed_line is not None),
                result.ranked,
                public_token(),
            ),
        )

    async def get(self, generation_id: int) -> Generation | None:
        """One generation by id."""
        rows = await self.fetch("SELECT * FROM generations WHERE id = ?", (generation_id,))
        return _generation(rows[0]) if rows else None

    async def take(
        self,
        model_id: str,
        cache_key: str,
        channel_id: int,
        guild_id: int | None,
        user_hash: str,
        requested: dict[str, Any],
    ) -> tuple[Generation, int] | None:
        """Reserve the least-shown generation for this key that this channel has not seen.

        Returns it with the id of a pending delivery (completed by ``delivered``), or None on a miss. The
        choice and the reservation are one statement, so no other taker (another request, the web API in
        this process or another) can take the same generation between them. Takes of one key wait for each
        other (``take_lock``, the web's too: on PostgreSQL statements run side by side) and each sees what
        the one before took, as on SQLite; on PostgreSQL those waiting in this process go together
        (``Batcher``)."""
        request = TakeRequest(channel_id, guild_id, user_hash, requested)
        if self._takes is None:
            return (await self._take_batch((model_id, cache_key), [request]))[0]
        return await self._takes.take((model_id, cache_key), request)

    async def _take_batch(
        self, group: tuple[str, str], requests: list[TakeRequest]
    ) -> list[tuple[Generation, int] | None]:
        """Each request's take in turn, each seeing the ones before (``Engine.serialized``: on PostgreSQL
        one transaction under the key's lock, its statements sent together); and the generations taken."""
        model_id, cache_key = group
        async with self.engine.serialized(take_lock(model_id, cache_key)) as tx:
            rows = await tx.fetch_many(TAKE, [_take_params(group, r, n) for n, r in enumerate(requests)])
            # On the same connection: read after the commit, the texts would wait for another pooled
            # connection and another turn of the loop (bench/cluster.py: burst p99 2.6 s against 1.7-1.9 s).
            ids = sorted({r["generation_id"] for r in rows})
            marks = ", ".join("?" for _ in ids)
            found = await tx.fetch(f"SELECT * FROM generations WHERE id IN ({marks})", ids) if ids else []
        gens = {g.id: g for g in map(_generation, found)}
        taken: list[tuple[Generation, int] | None] = [None] * len(requests)
        for r in rows:
            taken[r["n"]] = (gens[r["generation_id"]], r["id"])
        return taken

    async def _give_back(self, deliveries: list[int]) -> None:
        """Forget the deliveries of takes whose requests went away while they were being taken."""
        try:
            for delivery in deliveries:
                await self.undeliver(delivery)
        except StorageError as e:  # the texts stay counted as shown in their channels; nothing else is lost
            log.warning("could not give back %d takes of cancelled requests: %s", len(deliveries), e)

    async def reserve(
        self,
        generation_id: int,
        channel_id: int,
        guild_id: int | None,
        user_hash: str,
        requested: dict[str, Any],
    ) -> int:
        """Record a delivery about to be sent; its message id is filled in by ``delivered``."""
        return await self.insert(
            "INSERT INTO deliveries (generation_id, channel_id, guild_id, user_hash, requested, delivered) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (generation_id, channel_id, guild_id, user_hash, json.dumps(requested), time.time()),
        )

    async def delivered(self, delivery_id: int, message_id: int) -> None:
        """Attach the sent message to its delivery."""
        # Discord never reuses a message id, but a simulated Discord (the demo, tests) starts its ids over
        # each session while the database persists: an older row with this id is from another world.
        await self.execute_all(
            [
                (
                    "UPDATE deliveries SET message_id = NULL WHERE message_id = ? AND id != ?",
                    (message_id, delivery_id),
                ),
                ("UPDATE deliveries SET message_id = ? WHERE id = ?", (message_id, delivery_id)),
            ]
        )

    async def undeliver(self, delivery_id: int) -> None:
        """Forget a delivery whose message could not be sent (the generation stays available)."""
        await self.execute("DELETE FROM deliveries WHERE id = ? AND message_id IS NULL", (delivery_id,))

    async def generation_for_message(self, message_id: int) -> int | None:
        """Which generation a bot message shows."""
        rows = await self.fetch("SELECT generation_id FROM deliveries WHERE message_id = ?", (message_id,))
        return rows[0][0] if rows else None

    async def deliveries_of(self, generation_id: int, scope: Scope | None = None) -> list[dict[str, Any]]:
        """Where a generation was shown: everywhere (for the operator), or only within ``scope``."""
        where, params = scope.where() if scope else EVERYWHERE
        rows = await self.fetch(
            "SELECT message_id, channel_id, guild_id, delivered FROM deliveries d "
            f"WHERE generation_id = ? AND message_id IS NOT NULL AND {where} ORDER BY delivered",
            (generation_id, *params),
        )
        return [dict(r) for r in rows]

    # --- cache depth and demand ---------------------------------------------------------------

    async def depth(self, model_id: str) -> dict[str, int]:
        """Never-delivered generations per cache key."""
        rows = await self.fetch(
            "SELECT cache_key, COUNT(*) FROM generations g WHERE model_id = ? AND private = 0 "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.generation_id = g.id) GROUP BY cache_key",
            (model_id,),
        )
        return {r[0]: r[1] for r in rows}

    async def note_demand(self, cache_key: str) -> None:
        """Count a request for a key (warm-up keeps popular keys deeper; the operator's view shows it
        over time)."""
        now = time.time()
        await self.execute_all(
            [
                (
                    "INSERT INTO demand VALUES (?, 1, ?) ON CONFLICT (cache_key) DO UPDATE SET "
                    "requests = demand.requests + 1, last = excluded.last",
                    (cache_key, now),
                ),
                count_requests("discord", cache_key, 1, now),
            ]
        )

    async def note_cost(self, results: list[Result]) -> None:
        """Record what one batch of generation cost, per model: texts, tokens, and the batch's wall-clock
        time (its slowest result's), shared between the batch's models by their tokens."""
        if not results:
            return
        seconds = max(r.seconds for r in results)
        tokens = sum(r.tokens for r in results) or 1
        by_model: dict[str, list[Result]] = {}
        for r in results:
            by_model.setdefault(r.model_id, []).append(r)
        await self.execute_all(
            [
                (
                    "INSERT INTO generation_costs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET "
                    "texts = generation_costs.texts + excluded.texts, failed = generation_costs.failed + excluded.failed, "
                    "tokens = generation_costs.tokens + excluded.tokens, "
                    "seconds = generation_costs.seconds + excluded.seconds, "
                    "updated = excluded.updated",
                    (
                        model,
                        sum(r.ok for r in rs),
                        sum(not r.ok for r in rs),
                        sum(r.tokens for r in rs),
                        seconds * (sum(r.tokens for r in rs) or 1) / tokens,
                        time.time(),
                    ),
                )
                for model, rs in by_model.items()
            ]
        )

    async def hot_keys(self, limit: int) -> list[str]:
        """The most requested keys."""
        rows = await self.fetch(
            "SELECT cache_key FROM demand ORDER BY requests DESC, last DESC LIMIT ?", (limit,)
        )
        return [r[0] for r in rows]

    # --- ratings ------------------------------------------------------------------------------

    async def record_reaction(self, message_id: int, user_hash: str, vote: int, present: bool) -> bool:
        """A rating reaction added (``present``) or removed; the user's vote on the generation becomes
        the latest of their rating reactions still on its messages (none left: no vote).

        A reaction that cannot be written (a read-only or full disk) is kept and retried before the
        next one, so the order holds; returns False when it is waiting.
        """
        self.unsaved.append(Reaction(message_id, user_hash, vote, present))
        return await self.flush_reactions()

    async def flush_reactions(self) -> bool:
        """Write the reactions waiting in memory, oldest first; True when none is left."""
        async with self._flushing:  # reactions arriving together: each written once, in order
            while self.unsaved:
                try:
                    await self._apply(self.unsaved[0])
                except Unavailable as e:
                    log.warning("could not save a rating (%s); %d kept to retry", e, len(self.unsaved))
                    return False
                self.unsaved.pop(0)
        return True

    async def _apply(self, r: Reaction) -> None:
        """Write one reaction and recompute that user's vote on its generation, in one transaction."""
        gen = await self.generation_for_message(r.message_id)
        if gen is None:
            return  # not one of our answers
        now = time.time()
        async with self.engine.transaction() as tx:
            # Two processes recomputing one user's vote on one generation at once would each delete it
            # and both insert: one at a time.
            await tx.lock(lock_key("vote", gen, r.user_hash))
            # Delete, then insert: a reaction added again is the newest (a new ``seq``).
            await tx.fetch(
                "DELETE FROM reactions WHERE message_id = ? AND user_hash = ? AND vote = ?",
                (r.message_id, r.user_hash, r.vote),
            )
            if r.present:
                await tx.fetch(
                    "INSERT INTO reactions (message_id, user_hash, vote, generation_id, added) VALUES (?, ?, ?, ?, ?)",
                    (r.message_id, r.user_hash, r.vote, gen, now),
                )
            await tx.fetch(
                "DELETE FROM ratings WHERE generation_id = ? AND user_hash = ?", (gen, r.user_hash)
            )
            # The newest reaction still there is the vote.
            await tx.fetch(
                "INSERT INTO ratings SELECT generation_id, user_hash, vote, message_id, ? FROM reactions "
                "WHERE generation_id = ? AND user_hash = ? ORDER BY seq DESC LIMIT 1",
                (now, gen, r.user_hash),
            )

    async def votes(self, generation_id: int) -> tuple[int, int]:
        """(approvals, rejections) of one generation."""
        rows = await self.fetch(
            f"SELECT {UP}, {DOWN} FROM ratings r WHERE r.generation_id = ?",
            (generation_id,),
        )
        return int(rows[0][0]), int(rows[0][1])

    async def totals(self, scope: Scope | None = None) -> dict[str, int]:
        """Counts for /stats: everything (for the operator), or what was served within ``scope``."""
        where, params = scope.where() if scope else EVERYWHERE
        served = f"FROM deliveries d WHERE d.message_id IS NOT NULL AND {where}"
        voted = f"FROM ratings WHERE message_id IN (SELECT d.message_id {served}) AND vote = ?"
        out = {}
        for name, sql, args in (
            ("generations", f"SELECT COUNT(DISTINCT d.generation_id) {served}", params),
            ("served", f"SELECT COUNT(*) {served}", params),
            ("up", f"SELECT COUNT(*) {voted}", (*params, 1)),
            ("down", f"SELECT COUNT(*) {voted}", (*params, -1)),
        ):
            out[name] = (await self.fetch(sql, args))[0][0]
        if scope is None:
            out["generations"] = (await self.fetch("SELECT COUNT(*) FROM generations"))[0][0]
        return out

    async def texts_by_key(self) -> dict[str, list[str]]:
        """Every generated text, grouped by cache key (for duplicate counts in evaluation)."""
        rows = await self.fetch("SELECT cache_key, text FROM generations ORDER BY id")
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["cache_key"], []).append(r["text"])
        return out

    async def rated(self) -> list[dict[str, Any]]:
        """Every rated generation with its vote counts (for feedback export)."""
        rows = await self.fetch(
            f"SELECT g.*, {UP} AS up, {DOWN} AS down FROM generations g "
            "JOIN ratings r ON r.generation_id = g.id GROUP BY g.id ORDER BY g.id"
        )
        return [dict(r) | {"tags": json.loads(r["tags"])} for r in rows]


def count_requests(source: str, cache_key: str, n: int, when: float) -> tuple[str, tuple]:
    """The statement that adds ``n`` requests for a key to its hour's count (``source``: discord or web)."""
    return (
        "INSERT INTO request_counts VALUES (?, ?, ?, ?) ON CONFLICT (hour, source, cache_key) DO UPDATE SET "
        "requests = request_counts.requests + excluded.requests",
        (int(when // HOUR), source, cache_key, n),
    )


def _generation(row: Row) -> Generation:
    return Generation(
        row["id"],
        row["kind"],
        row["cache_key"],
        json.loads(row["tags"]),
        row["seed_line"],
        row["text"],
        row["model_id"],
        row["ranked"],
        row["public_id"],
    )


@asynccontextmanager
async def existing(database: str | Path, option: str = "--db") -> AsyncIterator[Database]:
    """The bot's database at ``database``, open for an operator's command and closed after; refused when
    there is none (opening would create an empty one). ``option``: the flag that named it, for messages."""
    db = Database(database)
    missing = InputError(f"{option} {db.path}: no such database (the bot creates it when it first starts)")
    if is_postgres(database):
        await db.engine.open()
        if "schema_migrations" not in await db.engine.tables():
            await db.engine.close()
            raise missing
    elif not Path(database).is_file():
        raise missing
    await db.open()
    try:
        yield db
    finally:
        await db.close()
