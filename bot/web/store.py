"""The site's reads and writes on the bot's database: public keys, least-shown takes, permalinks, lists.

Everything here sees only public generations (``privacy.PUBLIC``). A take records its showings in the
same ``deliveries`` table as the bot's answers and by the same least-shown rule (``storage.LEAST_SHOWN``),
so showings add up across Discord and the web. Small in-memory caches keep hot reads off the database:
the keys for a few seconds, a generation's immutable fields for as long as it is cached, a permalink's
page (with its votes) for ``PAGE_TTL`` seconds.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from linernotes.bot.storage import DOWN, LEAST_SHOWN, SHOWN, UP, Database, count_requests, take_lock
from linernotes.bot.web.privacy import PUBLIC

KEYS_TTL = 5.0  # seconds a list of keys is reused (a key warmed since is served after this at the latest)
PAGE_TTL = 5.0  # seconds a permalink is reused (votes, a server opting out, a delete: seen after this)
CACHED = 4096  # generations and permalinks kept in memory at most
COUNT_EVERY = 5.0  # seconds between writes of the request counts
FIELDS = "g.id, g.public_id, g.kind, g.tags, g.text, g.model_id, g.created"
VOTES = (
    "(SELECT COUNT(*) FROM ratings r WHERE r.generation_id = g.id AND r.vote = 1) AS up, "
    "(SELECT COUNT(*) FROM ratings r WHERE r.generation_id = g.id AND r.vote = -1) AS down"
)


@dataclass(frozen=True)
class Public:
    """A public generation as the site shows it: no row id, nothing of where it was posted."""

    row: int  # for the site's own bookkeeping only; never rendered
    id: str
    kind: str
    tags: dict[str, Any]
    text: str
    model_id: str
    created: float
    up: int = 0
    down: int = 0

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The API's form of it."""
        return {
            "id": self.id,
            "url": f"{base_url}/g/{self.id}",
            "kind": self.kind,
            "tags": self.tags,
            "text": self.text,
            "model_id": self.model_id,
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
        }


def _public(row: Any) -> Public:
    votes = (row["up"], row["down"]) if "up" in row.keys() else (0, 0)  # noqa: SIM118 (a Row: `in` reads values)
    return Public(
        row["id"], row["public_id"], row["kind"], json.loads(row["tags"]), row["text"], row["model_id"],
        row["created"], *votes,
    )  # fmt: skip


@dataclass
class Expiring:
    """A small cache whose entries expire after ``ttl`` seconds (oldest dropped beyond ``size``)."""

    ttl: float
    size: int = CACHED
    _items: OrderedDict[Any, tuple[float, Any]] = field(default_factory=OrderedDict)

    def get(self, key: Any) -> Any | None:
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: Any, value: Any) -> Any:
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


class WebStore:
    """The site's view of the database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._keys = Expiring(KEYS_TTL, 64)
        self._records = Expiring(float("inf"))  # a generation's text and tags never change
        self._pages = Expiring(PAGE_TTL)
        self._counts: dict[str, int] = {}
        self._counted = time.monotonic()

    async def serving_model(self) -> str | None:
        """The model the bot serves now (it records it when it starts and reloads), else the newest warmed one."""
        found = await self.db.get_meta("serving_model")
        if found:
            return found
        rows = await self.db.fetch(
            "SELECT model_id FROM generations WHERE origin = 'warm' ORDER BY id DESC LIMIT 1"
        )
        return rows[0][0] if rows else None

    async def public_keys(self, model_id: str | None = None) -> dict[str, int]:
        """Cache key -> public generations under it, of one model (None: every model)."""
        found = self._keys.get(model_id)
        if found is None:
            where, params = ("g.model_id = ? AND ", (model_id,)) if model_id else ("", ())
            rows = await self.db.fetch(
                f"SELECT g.cache_key, COUNT(*) FROM generations g WHERE {where}{PUBLIC} GROUP BY g.cache_key",
                params,
            )
            found = self._keys.put(model_id, {r[0]: r[1] for r in rows})
        return found

    async def take(self, model_id: str, keys: list[str], n: int, requested: dict[str, Any]) -> list[int]:
        """Record ``n`` showings on the web of the least-shown public generations under ``keys`` and
        return their row ids: the bot's rule (``LEAST_SHOWN``) applied n times, in one statement.

        Only the ``n`` least-shown generations can be among n takes in a row (any other has ``n`` before
        it), so those are the candidates. Each is a candidate once per showing it could still get: at
        level ``L`` it would be shown for the ``shown + L + 1``-th time. Ordered by that count, then by
        id, the first ``n`` are what ``n`` takes one after another would pick: no generation is shown
        again while one with fewer showings remains. One statement, so nothing else takes in between."""
        if not keys or n < 1:
            return []
        marks = ", ".join("?" for _ in keys)
        # Under the keys' locks, as the bot's takes of these keys (``Engine.serialized``).
        async with self.db.engine.serialized(*(take_lock(model_id, key) for key in keys)) as tx:
            rows = await tx.fetch(
                "WITH RECURSIVE level(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM level WHERE n + 1 < ?), "
                f"candidate AS (SELECT g.id, {SHOWN} AS shown FROM generations g "
                f"WHERE g.model_id = ? AND g.cache_key IN ({marks}) AND {PUBLIC} ORDER BY {LEAST_SHOWN} LIMIT ?), "
                "fewest AS (SELECT MIN(shown) AS least FROM candidate) "
                "INSERT INTO deliveries (generation_id, channel_id, guild_id, user_hash, requested, delivered, via) "
                "SELECT c.id, 0, NULL, '', ?, ?, 'web' FROM candidate c, level, fewest "
                "WHERE c.shown + level.n < fewest.least + ? ORDER BY c.shown + level.n, c.id LIMIT ? "
                "RETURNING generation_id",
                (n, model_id, *keys, n, json.dumps(requested), time.time(), n, n),
            )
        return [r[0] for r in rows]

    async def records(self, ids: Iterable[int]) -> dict[int, Public]:
        """The public fields of generations by row id (votes left out: they change)."""
        wanted = set(ids)
        found = {i: r for i in wanted if (r := self._records.get(i)) is not None}
        missing = sorted(wanted - set(found))
        if missing:
            marks = ", ".join("?" for _ in missing)
            rows = await self.db.fetch(
                f"SELECT {FIELDS} FROM generations g WHERE g.id IN ({marks})", tuple(missing)
            )
            for row in rows:
                found[row["id"]] = self._records.put(row["id"], _public(row))
        return found

    async def permalink(self, public_id: str) -> Public | None:
        """A public generation with its votes, by its public id; None when there is none (or it is private)."""
        found = self._pages.get(public_id)
        if found is None:
            rows = await self.db.fetch(
                f"SELECT {FIELDS}, {VOTES} FROM generations g WHERE g.public_id = ? AND {PUBLIC}",
                (public_id,),
            )
            if not rows:
                return None
            found = self._pages.put(public_id, _public(rows[0]))
        return found

    async def newest(self, keys: list[str] | None, limit: int) -> list[Public]:
        """The newest public generations (under ``keys``, or any), with their votes."""
        where, params = _among(keys)
        rows = await self.db.fetch(
            f"SELECT {FIELDS}, {VOTES} FROM generations g WHERE {where}{PUBLIC} ORDER BY g.id DESC LIMIT ?",
            (*params, limit),
        )
        return [_public(r) for r in rows]

    async def top_rated(self, keys: list[str] | None, limit: int) -> list[Public]:
        """The best-rated public generations (approvals less rejections, then approvals, then newest)."""
        where, params = _among(keys)
        rows = await self.db.fetch(
            f"SELECT {FIELDS}, {UP} AS up, {DOWN} AS down FROM ratings r "
            f"JOIN generations g ON g.id = r.generation_id WHERE {where}{PUBLIC} GROUP BY g.id HAVING {UP} > 0 "
            f"ORDER BY {UP} - {DOWN} DESC, {UP} DESC, g.id DESC LIMIT ?",
            (*params, limit),
        )
        return [_public(r) for r in rows]

    def count(self, label: str) -> None:
        """Count one API request for a key (written with the next ``flush_counts``)."""
        self._counts[label] = self._counts.get(label, 0) + 1

    async def flush_counts(self, force: bool = False) -> None:
        """Write the request counts gathered, at most every ``COUNT_EVERY`` seconds (``force``: now)."""
        if not self._counts or (not force and time.monotonic() - self._counted < COUNT_EVERY):
            return
        counts, self._counts, self._counted = self._counts, {}, time.monotonic()
        now = time.time()
        await self.db.execute_all([count_requests("web", label, n, now) for label, n in counts.items()])


def _among(keys: list[str] | None) -> tuple[str, tuple]:
    """A condition limiting ``generations g`` to some cache keys (None: no limit), with its parameters."""
    if keys is None:
        return "", ()
    if not keys:
        return "1 = 0 AND ", ()
    return f"g.cache_key IN ({', '.join('?' for _ in keys)}) AND ", tuple(keys)
