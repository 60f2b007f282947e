"""Server models in the database: each server's adapters (in the states of ``bot.model_states``) and the
one it uses. Only ``ready`` models are ever served; a model becomes ready in one write, after its adapter
is complete on disk, so nothing is ever half-registered. Names are unique in a server by their normal form
(``bot.names``), and every lookup by name goes through it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from linernotes.bot.engines import Conflict, Row
from linernotes.bot.model_states import FAILED, JOB, READY
from linernotes.bot.names import free_name, name_key
from linernotes.bot.storage import Database
from linernotes.common.errors import LinernotesError

log = logging.getLogger(__name__)
LIVE = (*JOB, READY)  # what counts against a server's quota
STATUSES = (*LIVE, FAILED)  # what a row may hold (cancelled and deleted models have none)
# Each server's choice, when it is a ready model: only a ready one serves. A failed model is no one's
# choice (``fail`` clears it); a choice older versions left on a model that failed reads as none.
_CHOSEN = (
    "SELECT s.guild_id, s.active_model FROM server_settings s "
    "JOIN server_models m ON m.id = s.active_model WHERE m.status = 'ready'"
)


class ModelError(LinernotesError):
    """A /model request that cannot be done (unknown name, quota, a job already running, ...)."""


@dataclass(frozen=True)
class ServerModel:
    """One server's model: its name, state, the adapter's id once ready, and where its files are."""

    id: int
    guild_id: int
    name: str
    status: str
    base_model_id: str
    model_id: str | None
    path: str
    upload: str
    report: dict[str, Any]
    error: str | None
    created: float
    updated: float
    holder: str | None = None  # the trainer process working on it (None: queued for any trainer)
    channel_id: int | None = None  # where /model train was asked: the trainer tells the member there

    @property
    def adapter_name(self) -> str:
        """The name its adapter is attached under in the generator (unique across servers)."""
        return adapter_name(self.id)


def adapter_name(model_id: int) -> str:
    """The name the adapter of the server model with row id ``model_id`` is attached under."""
    return f"server-{model_id}"


def _model(row: Row) -> ServerModel:
    fields = {k: v for k, v in dict(row).items() if k != "name_key"}  # the registry's own lookup column
    return ServerModel(**{**fields, "report": json.loads(row["report"])})


class ModelRegistry:
    """Reads and writes the ``server_models`` and ``server_settings`` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._keyed = False  # rows from before names had a normal form have been given theirs

    async def add(
        self,
        guild_id: int,
        name: str,
        base_model_id: str,
        path: str,
        upload: str,
        report: dict[str, Any],
        adapter_id: str | None = None,
        holder: str | None = None,
        channel_id: int | None = None,
    ) -> ServerModel:
        """Register a queued model, or a ready one when its adapter (``adapter_id``) is already complete
        on disk (replacing a failed one of the same name); refuses a taken name."""
        await self._fill_keys()
        now, key = time.time(), name_key(name)
        status = "queued" if adapter_id is None else "ready"  # ready in this one write, never half-registered
        # A failed model of that name gives way, with any texts it wrote before it failed (as a delete would).
        failed = await self.db.fetch(
            "SELECT * FROM server_models WHERE guild_id = ? AND name_key = ? AND status = 'failed'",
            (guild_id, key),
        )
        for old in map(_model, failed):
            await self.forget(old)
        row = (guild_id, name, key, status, base_model_id, adapter_id, path, upload, json.dumps(report))
        try:
            model_id = await self.db.insert(
                "INSERT INTO server_models (guild_id, name, name_key, status, base_model_id, model_id, path, "
                "upload, report, created, updated, holder, channel_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, now, now, holder, channel_id),
            )
        except Conflict:
            await self.check_free(guild_id, name)  # says which model holds the name
            raise
        found = await self.by_id(model_id)
        assert found is not None
        return found

    async def check_free(self, guild_id: int, name: str) -> None:
        """Refuse a name this server's models already have (a failed one's is free: it is replaced)."""
        await self._fill_keys()
        rows = await self.db.fetch(
            "SELECT name FROM server_models WHERE guild_id = ? AND name_key = ? AND status != 'failed'",
            (guild_id, name_key(name)),
        )
        if rows:
            held = rows[0][0]
            alike = "" if held == name else " (names that differ only in case or look-alike letters are one)"
            raise ModelError(f"This server already has a model named {held!r}{alike}; delete it first.")

    async def _fill_keys(self) -> None:
        """Give rows from before migration 5 their name's normal form; a name that collides with an older
        model's in its server (or with 'default') is renamed ``name-2``, ``name-3``... and logged."""
        if self._keyed:
            return
        rows = await self.db.fetch("SELECT id, guild_id, name, name_key FROM server_models ORDER BY id")
        taken: dict[int, set[str]] = {}
        for r in rows:
            if r["name_key"] is not None:
                taken.setdefault(r["guild_id"], set()).add(r["name_key"])
        updates = []
        for r in rows:
            if r["name_key"] is not None:
                continue
            keys = taken.setdefault(r["guild_id"], set())
            name = free_name(r["name"], keys)
            keys.add(name_key(name))
            updates.append(
                (
                    "UPDATE server_models SET name = ?, name_key = ? WHERE id = ?",
                    (name, name_key(name), r["id"]),
                )
            )
            if name != r["name"]:
                log.warning(
                    "server %s: model %r is renamed %r: its name is another model's (or 'default') "
                    "once case and look-alike letters are set aside", r["guild_id"], r["name"], name,
                )  # fmt: skip
        if updates:
            await self.db.execute_all(updates)
        self._keyed = True

    async def by_id(self, model_id: int) -> ServerModel | None:
        """One model by its row id."""
        rows = await self.db.fetch("SELECT * FROM server_models WHERE id = ?", (model_id,))
        return _model(rows[0]) if rows else None

    async def named(self, guild_id: int, name: str) -> ServerModel:
        """This server's model called ``name`` (by the names' normal form: case and look-alike letters
        aside), or a ModelError listing its models."""
        await self._fill_keys()
        rows = await self.db.fetch(
            "SELECT * FROM server_models WHERE guild_id = ? AND name_key = ?", (guild_id, name_key(name))
        )
        if rows:
            return _model(rows[0])
        names = [m.name for m in await self.of_server(guild_id)]
        known = f" Its models: {', '.join(names)}." if names else " It has none yet: /model train makes one."
        raise ModelError(f"This server has no model named {name!r}.{known}")

    async def of_server(self, guild_id: int) -> list[ServerModel]:
        """Every model of one server, oldest first."""
        rows = await self.db.fetch("SELECT * FROM server_models WHERE guild_id = ? ORDER BY id", (guild_id,))
        return [_model(r) for r in rows]

    async def with_status(self, *statuses: str) -> list[ServerModel]:
        """Every server's models in these states, oldest first."""
        marks = ", ".join("?" for _ in statuses)
        rows = await self.db.fetch(
            f"SELECT * FROM server_models WHERE status IN ({marks}) ORDER BY id", statuses
        )
        return [_model(r) for r in rows]

    async def live_count(self, guild_id: int) -> int:
        """Models counting against this server's quota (a job, or ready)."""
        marks = ", ".join("?" for _ in LIVE)
        rows = await self.db.fetch(
            f"SELECT COUNT(*) FROM server_models WHERE guild_id = ? AND status IN ({marks})",
            (guild_id, *LIVE),
        )
        return int(rows[0][0])

    async def check_room(self, guild_id: int, limit: int) -> None:
        """Refuse a new model when this server already has ``limit`` (its quota, ``models_per_server``)."""
        if await self.live_count(guild_id) >= limit:
            raise ModelError(f"This server has {limit} models, its limit; /model delete one first.")

    async def by_adapter(self, adapter_id: str) -> ServerModel | None:
        """The model (any server's) whose adapter has this model id."""
        rows = await self.db.fetch("SELECT * FROM server_models WHERE model_id = ?", (adapter_id,))
        return _model(rows[0]) if rows else None

    async def claim_queued(self, holder: str, older_than: int | None = None) -> ServerModel | None:
        """Claim the oldest job queued for any trainer (older than row ``older_than``, if given) for
        ``holder``: one statement, so two trainers never claim the same job."""
        limit, params = ("AND id < ? ", (older_than,)) if older_than is not None else ("", ())
        rows = await self.db.write(
            "UPDATE server_models SET holder = ? WHERE id = (SELECT id FROM server_models WHERE status = 'queued' "
            f"AND holder IS NULL {limit}ORDER BY id LIMIT 1) AND holder IS NULL RETURNING *",
            (holder, *params),
        )
        return _model(rows[0]) if rows else None

    async def waiting(self, model_id: int) -> int:
        """Jobs ahead of row ``model_id``: queued before it, or being worked on, by any process (0: every
        job there is)."""
        marks = ", ".join("?" for _ in JOB)
        rows = await self.db.fetch(
            f"SELECT COUNT(*) FROM server_models WHERE status IN ({marks}) "
            "AND (status != 'queued' OR id < ? OR ? = 0) AND id != ?",
            (*JOB, model_id, model_id, model_id),
        )
        return int(rows[0][0])

    async def orphans(self) -> list[ServerModel]:
        """Jobs whose trainer is gone: held by a process whose lease expired (it died, or stopped), or
        past queued with no holder (left by a bot from before holders)."""
        marks = ", ".join("?" for _ in JOB)
        rows = await self.db.fetch(
            f"SELECT * FROM server_models m WHERE status IN ({marks}) AND CASE WHEN holder IS NULL "
            "THEN status != 'queued' ELSE NOT EXISTS (SELECT 1 FROM leases l WHERE l.name = 'process:' || "
            "m.holder AND l.expires >= ?) END ORDER BY id",
            (*JOB, time.time()),
        )
        return [_model(r) for r in rows]

    async def knows_server(self, guild_id: int) -> bool:
        """Whether the bot has ever answered in this server or holds a model or setting for it."""
        rows = await self.db.fetch(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE guild_id = ?) "
            "OR EXISTS (SELECT 1 FROM server_models WHERE guild_id = ?) "
            "OR EXISTS (SELECT 1 FROM server_settings WHERE guild_id = ?)",
            (guild_id, guild_id, guild_id),
        )
        return bool(rows[0][0])

    async def set_status(
        self,
        model_id: int,
        status: str,
        *,
        adapter_id: str | None = None,
        report: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Move a model to ``status`` (with its adapter's id, figures or error)."""
        sets, params = ["status = ?", "updated = ?", "error = ?"], [status, time.time(), error]
        if adapter_id is not None:
            sets.append("model_id = ?")
            params.append(adapter_id)
        if report is not None:
            sets.append("report = ?")
            params.append(json.dumps(report))
        await self.db.execute(f"UPDATE server_models SET {', '.join(sets)} WHERE id = ?", (*params, model_id))

    async def active(self, guild_id: int) -> int | None:
        """The row id of the model this server uses (None: the bot's own)."""
        rows = await self.db.fetch(f"{_CHOSEN} AND s.guild_id = ?", (guild_id,))
        return rows[0][1] if rows else None

    async def actives(self) -> dict[int, int]:
        """Server id -> the row id of the model it uses, for every server that chose one."""
        return {r[0]: r[1] for r in await self.db.fetch(_CHOSEN)}

    async def set_active(self, guild_id: int, model_id: int | None) -> None:
        """Make this server use ``model_id`` (None: the bot's own model); a model deleted meanwhile is not
        chosen (one statement: the row is there or it is not)."""
        if model_id is None:
            await self.db.execute(
                "INSERT INTO server_settings VALUES (?, NULL) ON CONFLICT (guild_id) DO UPDATE SET "
                "active_model = NULL",
                (guild_id,),
            )
            return
        await self.db.execute(
            "INSERT INTO server_settings SELECT ?, id FROM server_models WHERE id = ? "
            "ON CONFLICT (guild_id) DO UPDATE SET active_model = excluded.active_model",
            (guild_id, model_id),
        )

    async def fail(self, model_id: int, error: str | None) -> None:
        """Record a model failed, with why, and no server's choice any more (one transaction)."""
        await self.db.execute_all(
            [
                (
                    "UPDATE server_models SET status = ?, error = ?, updated = ? WHERE id = ?",
                    (FAILED, error, time.time(), model_id),
                ),
                ("UPDATE server_settings SET active_model = NULL WHERE active_model = ?", (model_id,)),
            ]
        )

    async def forget(self, model: ServerModel, keep: Collection[str] = ()) -> int:
        """Delete a model's row and every generation it wrote, with their deliveries and ratings (so no
        text of it stays behind, nor in a feedback export); returns how many generations went. Texts
        under an id it does not own alone (see ``_owns_texts``; ``keep``: ids of models served now) stay."""
        owned = await self._owns_texts(model, keep)
        key = (model.model_id or "",)
        count = (await self.db.fetch("SELECT COUNT(*) FROM generations WHERE model_id = ?", key))[0][0]
        await self.db.execute_all(
            [
                *(_deleting_texts(key) if owned else []),
                ("UPDATE server_settings SET active_model = NULL WHERE active_model = ?", (model.id,)),
                ("DELETE FROM server_models WHERE id = ?", (model.id,)),
            ]
        )
        return int(count) if owned else 0

    async def _owns_texts(self, model: ServerModel, keep: Collection[str]) -> bool:
        """Whether the texts stored under ``model``'s adapter id are its own alone. Not when that id is a
        base's (its own, another row's, or one in ``keep``), another row's adapter id, or wrote texts
        before the row existed: rows registered before ids were checked (``models add``) may carry the
        bot's own model's id, or one it served before, and deleting by id would delete that model's texts."""
        adapter = model.model_id
        if not adapter or adapter == model.base_model_id or adapter in keep:
            return False
        shared = await self.db.fetch(
            "SELECT EXISTS (SELECT 1 FROM server_models WHERE id != ? AND ? IN (model_id, base_model_id)) "
            "OR EXISTS (SELECT 1 FROM generations WHERE model_id = ? AND created <= ?)",
            (model.id, adapter, adapter, model.created),
        )
        if shared[0][0]:
            log.warning(
                "server %s: model %r shares its id %s with another model; its texts are kept",
                model.guild_id, model.name, adapter,
            )  # fmt: skip
            return False
        return True


def _deleting_texts(key: tuple[str]) -> list[tuple[str, tuple]]:
    """The statements that delete every generation under one model id, with its deliveries and ratings."""
    gens = "SELECT id FROM generations WHERE model_id = ?"
    return [
        (f"DELETE FROM reactions WHERE generation_id IN ({gens})", key),
        (f"DELETE FROM ratings WHERE generation_id IN ({gens})", key),
        (f"DELETE FROM deliveries WHERE generation_id IN ({gens})", key),
        ("DELETE FROM generations WHERE model_id = ?", key),
    ]
