"""The bot's SQLite database (aiosqlite, one file, WAL): the generation cache, deliveries, ratings.

User ids are never stored: a salted hash (the salt is random per database) identifies a voter.
Multi-statement operations hold one lock, so two requests never take the same cached generation.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.migrations import MIGRATIONS
from model.generator import Result


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


class Database:
    """Async access to the bot's database."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._salt = ""

    async def open(self) -> None:
        """Open, switch to WAL, and apply pending migrations."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        self._db.row_factory = aiosqlite.Row
        await self._db.execute_fetchall("PRAGMA journal_mode=WAL")
        await self._db.execute_fetchall("PRAGMA foreign_keys=ON")
        await self.migrate()
        self._salt = await self._meta("user_salt") or await self._set_meta("user_salt", secrets.token_hex(16))

    async def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _exec(self, sql: str, params: tuple = ()) -> int:
        """Run one statement, close its cursor, commit; returns the last inserted row id."""
        async with self.db.execute(sql, params) as cur:
            rowid = cur.lastrowid
        await self.db.commit()
        return int(rowid or 0)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("database is not open")
        return self._db

    async def migrate(self) -> list[int]:
        """Apply migrations newer than the database; returns the versions applied."""
        await self._exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)"
        )
        done = {r[0] for r in await self.db.execute_fetchall("SELECT version FROM schema_migrations")}
        applied = []
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            quoted = name.replace("'", "''")  # executescript takes no parameters
            await self.db.executescript(
                f"BEGIN;\n{sql}\nINSERT INTO schema_migrations VALUES ({version}, "
                f"'{quoted}', {time.time()});\nCOMMIT;"
            )
            applied.append(version)
        return applied

    async def versions(self) -> list[int]:
        """Applied migration versions."""
        return [
            r[0] for r in await self.db.execute_fetchall("SELECT version FROM schema_migrations ORDER BY 1")
        ]

    async def _meta(self, key: str) -> str | None:
        rows = await self.db.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    async def _set_meta(self, key: str, value: str) -> str:
        await self._exec("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        return value

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
        return await self._exec(
            "INSERT INTO generations (kind, cache_key, tags, seed_line, text, model_id, sampling, seed, origin, "
            "created, private) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ),
        )

    async def get(self, generation_id: int) -> Generation | None:
        """One generation by id."""
        rows = await self.db.execute_fetchall("SELECT * FROM generations WHERE id = ?", (generation_id,))
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

        Returns it with the id of a pending delivery (completed by ``delivered``), or None on a miss.
        """
        async with self._lock:
            rows = await self.db.execute_fetchall(
                "SELECT g.*, (SELECT COUNT(*) FROM deliveries d WHERE d.generation_id = g.id) AS shown "
                "FROM generations g WHERE g.model_id = ? AND g.cache_key = ? AND g.private = 0 "
                "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.generation_id = g.id AND d.channel_id = ?) "
                "ORDER BY shown, g.id LIMIT 1",
                (model_id, cache_key, channel_id),
            )
            if not rows:
                return None
            gen = _generation(rows[0])
            delivery = await self.reserve(gen.id, channel_id, guild_id, user_hash, requested)
            return gen, delivery

    async def reserve(
        self,
        generation_id: int,
        channel_id: int,
        guild_id: int | None,
        user_hash: str,
        requested: dict[str, Any],
    ) -> int:
        """Record a delivery about to be sent; its message id is filled in by ``delivered``."""
        return await self._exec(
            "INSERT INTO deliveries (generation_id, channel_id, guild_id, user_hash, requested, delivered) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (generation_id, channel_id, guild_id, user_hash, json.dumps(requested), time.time()),
        )

    async def delivered(self, delivery_id: int, message_id: int) -> None:
        """Attach the sent message to its delivery."""
        async with self._lock:
            # Discord never reuses a message id, but a simulated Discord (the demo, tests) starts its ids
            # over each session while the database persists: an older row with this id is from another world.
            await self._exec(
                "UPDATE deliveries SET message_id = NULL WHERE message_id = ? AND id != ?",
                (message_id, delivery_id),
            )
            await self._exec("UPDATE deliveries SET message_id = ? WHERE id = ?", (message_id, delivery_id))

    async def undeliver(self, delivery_id: int) -> None:
        """Forget a delivery whose message could not be sent (the generation stays available)."""
        await self._exec("DELETE FROM deliveries WHERE id = ? AND message_id IS NULL", (delivery_id,))

    async def generation_for_message(self, message_id: int) -> int | None:
        """Which generation a bot message shows."""
        rows = await self.db.execute_fetchall(
            "SELECT generation_id FROM deliveries WHERE message_id = ?", (message_id,)
        )
        return rows[0][0] if rows else None

    async def deliveries_of(self, generation_id: int) -> list[dict[str, Any]]:
        """Where a generation was shown."""
        rows = await self.db.execute_fetchall(
            "SELECT message_id, channel_id, guild_id, delivered FROM deliveries "
            "WHERE generation_id = ? AND message_id IS NOT NULL ORDER BY delivered",
            (generation_id,),
        )
        return [dict(r) for r in rows]

    # --- cache depth and demand ---------------------------------------------------------------

    async def depth(self, model_id: str) -> dict[str, int]:
        """Never-delivered generations per cache key."""
        rows = await self.db.execute_fetchall(
            "SELECT cache_key, COUNT(*) FROM generations g WHERE model_id = ? AND private = 0 "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.generation_id = g.id) GROUP BY cache_key",
            (model_id,),
        )
        return {r[0]: r[1] for r in rows}

    async def note_demand(self, cache_key: str) -> None:
        """Count a request for a key (warm-up keeps popular keys deeper)."""
        await self._exec(
            "INSERT INTO demand VALUES (?, 1, ?) ON CONFLICT (cache_key) DO UPDATE SET "
            "requests = requests + 1, last = excluded.last",
            (cache_key, time.time()),
        )

    async def hot_keys(self, limit: int) -> list[str]:
        """The most requested keys."""
        rows = await self.db.execute_fetchall(
            "SELECT cache_key FROM demand ORDER BY requests DESC, last DESC LIMIT ?", (limit,)
        )
        return [r[0] for r in rows]

    # --- ratings ------------------------------------------------------------------------------

    async def vote(self, message_id: int, user_hash: str, vote: int) -> bool:
        """Record (or change) one user's vote on the generation a message shows; False if unknown."""
        gen = await self.generation_for_message(message_id)
        if gen is None:
            return False
        await self._exec(
            "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (generation_id, user_hash) DO UPDATE SET "
            "vote = excluded.vote, message_id = excluded.message_id, updated = excluded.updated",
            (gen, user_hash, vote, message_id, time.time()),
        )
        return True

    async def unvote(self, message_id: int, user_hash: str, vote: int) -> bool:
        """Remove a user's vote if it is the one being withdrawn (removing 👍 does not undo a 👎)."""
        gen = await self.generation_for_message(message_id)
        if gen is None:
            return False
        await self._exec(
            "DELETE FROM ratings WHERE generation_id = ? AND user_hash = ? AND vote = ?",
            (gen, user_hash, vote),
        )
        return True

    async def votes(self, generation_id: int) -> tuple[int, int]:
        """(approvals, rejections) of one generation."""
        rows = await self.db.execute_fetchall(
            "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM ratings WHERE generation_id = ?",
            (generation_id,),
        )
        return int(rows[0][0]), int(rows[0][1])

    async def totals(self) -> dict[str, int]:
        """Counts for /stats."""
        one = "SELECT COUNT(*) FROM {}"
        out = {}
        for name, sql in (
            ("generations", one.format("generations")),
            ("served", one.format("deliveries WHERE message_id IS NOT NULL")),
            ("up", one.format("ratings WHERE vote = 1")),
            ("down", one.format("ratings WHERE vote = -1")),
        ):
            out[name] = (await self.db.execute_fetchall(sql))[0][0]
        return out

    async def texts_by_key(self) -> dict[str, list[str]]:
        """Every generated text, grouped by cache key (for duplicate counts in evaluation)."""
        rows = await self.db.execute_fetchall("SELECT cache_key, text FROM generations ORDER BY id")
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r["cache_key"], []).append(r["text"])
        return out

    async def rated(self) -> list[dict[str, Any]]:
        """Every rated generation with its vote counts (for feedback export)."""
        rows = await self.db.execute_fetchall(
            "SELECT g.*, SUM(r.vote = 1) AS up, SUM(r.vote = -1) AS down FROM generations g "
            "JOIN ratings r ON r.generation_id = g.id GROUP BY g.id ORDER BY g.id"
        )
        return [dict(r) | {"tags": json.loads(r["tags"])} for r in rows]


def _generation(row: aiosqlite.Row) -> Generation:
    return Generation(
        row["id"],
        row["kind"],
        row["cache_key"],
        json.loads(row["tags"]),
        row["seed_line"],
        row["text"],
        row["model_id"],
    )
