"""``linernotes db copy``: a bot's store moved into another (SQLite or PostgreSQL, either way), every row
and id kept, the counts checked.

The source is read in one snapshot (``Engine.snapshot``: a consistent view even while a bot writes to it;
what it writes after the copy began stays behind) and the target is written in one transaction that also
holds the check, so a copy that fails leaves the target as empty as it found it. Columns come from the
stores themselves, so a migration that adds one needs nothing here; one that adds a table must add it to
``TABLES`` (the copy refuses a table it does not know rather than leave it behind).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from linernotes.bot.engines import Engine, Transaction, is_postgres
from linernotes.bot.storage import Database, existing
from linernotes.common.errors import InputError, LinernotesError


@dataclass(frozen=True)
class Table:
    """A table the copy moves: its name, the key its rows are read in order of, and integer columns whose
    sum and maximum must come out the same."""

    name: str
    key: tuple[str, ...]
    sums: tuple[str, ...] = ()


# In foreign-key order: each table after the ones it references.
TABLES = (
    Table("meta", ("key",)),
    Table("generations", ("id",), ("id", "shown", "private")),
    Table("deliveries", ("id",), ("id", "generation_id")),
    Table("ratings", ("generation_id", "user_hash"), ("generation_id", "vote")),
    Table("reactions", ("seq",), ("seq", "generation_id", "vote")),
    Table("demand", ("cache_key",), ("requests",)),
    Table("server_models", ("id",), ("id",)),
    Table("server_settings", ("guild_id",), ("active_model",)),
    Table("published_servers", ("guild_id",)),
    Table("request_counts", ("hour", "source", "cache_key"), ("hour", "requests")),
    Table("generation_costs", ("model_id",), ("texts", "failed", "tokens")),
    Table("warm_runs", ("id",), ("id",)),
)
# The target's own migrations, and who holds a piece of work right now (it expires within seconds).
SKIPPED = frozenset({"schema_migrations", "leases"})
# What ``Database.open`` wrote into the target itself: replaced by the source's (its salt above all: with
# another salt every voter's hash would change, and a vote could be counted twice).
OWN_META = ("user_salt", "opened")
BATCH = 5000  # rows read and written at a time
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: C:\ is a drive


class CopyError(LinernotesError):
    """The target came out different from the source (the copy was rolled back)."""


@dataclass(frozen=True)
class Copied:
    """What a copy moved: rows per table, in the order copied, and the seconds it took."""

    rows: dict[str, int]
    seconds: float

    @property
    def total(self) -> int:
        """Rows copied, every table together."""
        return sum(self.rows.values())


def store_of(value: str, option: str) -> str:
    """The store a ``--from``/``--to`` value names: a PostgreSQL URL as given, else a SQLite file's path."""
    if is_postgres(value):
        return value
    if value.startswith("sqlite:"):
        if not value.removeprefix("sqlite:"):
            raise InputError(f"{option} sqlite: names no file (sqlite:PATH)")
        return value.removeprefix("sqlite:")
    scheme = _SCHEME.match(value)
    if scheme:  # the value itself is not echoed: an unknown URL may hold a password
        raise InputError(
            f"{option}: unknown scheme {scheme[1]!r}: give sqlite:PATH, a file's path or a postgresql:// URL "
            "(a file whose name holds a colon: sqlite:NAME or ./NAME)"
        )
    return value


def _same(source: str, target: str) -> bool:
    """Whether two stores are one (the same file, or the same URL)."""
    if is_postgres(source) or is_postgres(target):
        return source == target
    return Path(source).resolve() == Path(target).resolve()


async def copy_store(source: str, target: str) -> Copied:
    """Copy every row of the store ``source`` into the empty store ``target`` (``--from``/``--to`` values)."""
    source, target = store_of(source, "--from"), store_of(target, "--to")
    if _same(source, target):
        raise InputError(f"--to {Database(target).path}: the same store as --from")
    started = time.monotonic()
    async with existing(source, "--from") as src:  # refused when missing: opening would create it
        dst = Database(target)
        await dst.open()  # migrated to the latest version, as the source just was
        try:
            columns = await _columns(src, dst)
            rows = await _copy_rows(src.engine, dst.engine, columns)
        finally:
            await dst.close()
    return Copied(rows, time.monotonic() - started)


async def _columns(src: Database, dst: Database) -> dict[str, list[str]]:
    """The columns to copy per table; refused when the source holds what the target cannot."""
    newer = sorted(set(await src.versions()) - set(await dst.versions()))
    if newer:
        raise InputError(
            f"--from {src.path}: migrated to version {newer[-1]} by a newer linernotes; update this one first"
        )
    unknown = sorted(await src.engine.tables() - SKIPPED - {t.name for t in TABLES})
    if unknown:
        raise InputError(f"--from {src.path}: holds tables this copy does not know: {', '.join(unknown)}")
    columns = {}
    for table in TABLES:
        have, can = await src.engine.columns(table.name), set(await dst.engine.columns(table.name))
        lacking = [c for c in have if c not in can]
        if lacking:
            raise InputError(
                f"--to {dst.path}: table {table.name} has no column {', '.join(lacking)} that the source has"
            )
        columns[table.name] = have  # a column only the target has keeps its default
    return columns


async def _copy_rows(src: Engine, dst: Engine, columns: dict[str, list[str]]) -> dict[str, int]:
    """Every table's rows from one snapshot of ``src`` into ``dst`` in one transaction, checked before it commits."""
    async with src.snapshot() as read, dst.transaction() as write:
        await _refuse_rows(write, dst.label)
        marks = ", ".join("?" for _ in OWN_META)
        await write.fetch(f"DELETE FROM meta WHERE key IN ({marks})", OWN_META)
        rows = {t.name: await _copy_table(read, write, t, columns[t.name]) for t in TABLES}
        await _undo_showings(write)
        if dst.dialect == "postgresql":
            await _continue_ids(write)
        await _check(read, write, dst.label)
    return rows


async def _refuse_rows(write: Transaction, label: str) -> None:
    """Refuse a target holding rows already (besides the meta it wrote itself on opening)."""
    held = []
    for table in TABLES:
        own = f" WHERE key NOT IN ({', '.join('?' for _ in OWN_META)})" if table.name == "meta" else ""
        rows = await write.fetch(f"SELECT COUNT(*) FROM {table.name}{own}", OWN_META if own else ())
        if rows[0][0]:
            held.append(f"{table.name}: {rows[0][0]}")
    if held:
        raise InputError(
            f"--to {label}: the target already holds rows ({', '.join(held)}); copy only into an empty store"
        )


async def _copy_table(read: Transaction, write: Transaction, table: Table, columns: list[str]) -> int:
    """One table's rows, ``BATCH`` at a time in key order; returns how many."""
    names, key = ", ".join(columns), ", ".join(table.key)
    insert = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    after: tuple = ()
    copied = 0
    while True:
        # Each page starts after the last key of the one before: no OFFSET to count through again.
        where = f" WHERE ({key}) > ({', '.join('?' for _ in table.key)})" if after else ""
        rows = await read.fetch(
            f"SELECT {names} FROM {table.name}{where} ORDER BY {key} LIMIT ?", (*after, BATCH)
        )
        if not rows:
            return copied
        await write.many(insert, [tuple(r) for r in rows])
        copied += len(rows)
        after = tuple(rows[-1][k] for k in table.key)


async def _undo_showings(write: Transaction) -> None:
    """Give each generation back the ``shown`` it was copied with: the triggers on ``deliveries``
    (migration 7) counted every copied delivery once more on top of it."""
    # Were the triggers ever to go, this would go wrong loudly: ``_check`` compares the sums of ``shown``.
    await write.fetch(
        "UPDATE generations SET shown = shown - "
        "(SELECT COUNT(*) FROM deliveries d WHERE d.generation_id = generations.id) "
        "WHERE id IN (SELECT generation_id FROM deliveries)"
    )


async def _continue_ids(write: Transaction) -> None:
    """On PostgreSQL, number new rows after the highest id copied (SQLite's row ids follow by themselves)."""
    identities = await write.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND is_identity = 'YES'"
    )
    for table, column in identities:
        # An empty table's MAX is NULL, and setval of NULL leaves the sequence at its start.
        await write.fetch(
            f"SELECT setval(pg_get_serial_sequence(?, ?), MAX({column})) FROM {table}", (table, column)
        )


async def _figures(tx: Transaction, table: Table) -> dict[str, int | None]:
    """A table's row count, and the sum and maximum of its ``sums`` columns."""
    asked = ["COUNT(*)"] + [f"{f}({c})" for c in table.sums for f in ("SUM", "MAX")]
    row = (await tx.fetch(f"SELECT {', '.join(asked)} FROM {table.name}"))[0]
    return {name: None if value is None else int(value) for name, value in zip(asked, row, strict=True)}


async def _check(read: Transaction, write: Transaction, label: str) -> None:
    """Refuse to commit a target whose figures differ from the source's snapshot."""
    for table in TABLES:
        was, now = await _figures(read, table), await _figures(write, table)
        differ = [f"{name} {was[name]} -> {now[name]}" for name in was if was[name] != now[name]]
        if differ:
            raise CopyError(
                f"--to {label}: {table.name} came out different ({'; '.join(differ)}); nothing was copied"
            )
