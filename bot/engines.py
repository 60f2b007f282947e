"""The two engines under the bot's store: one SQLite file (embedded, the default) or a PostgreSQL server
that several bot processes share (``--db postgresql://...``, through asyncpg).

``bot.storage`` and the modules beside it write their SQL once, in the subset both engines speak, with
``?`` placeholders; the PostgreSQL engine numbers them (``$1``...). Where the engines differ (the
migrations' column types, a trigger) the migration says so. At run time they differ only where
PostgreSQL runs statements side by side and SQLite has one writer: ``Transaction.lock`` does something on
PostgreSQL alone.

Errors come out in the store's terms: ``Unavailable`` (the file or server cannot be used now: read-only,
full, gone, restarting; a vote is kept and retried), ``Conflict`` (a uniqueness or reference rule said
no), else the driver's own (a bug in our SQL, which must not be hidden).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiosqlite

from linernotes.common.errors import LinernotesError

log = logging.getLogger(__name__)
Row = Any  # aiosqlite.Row or asyncpg.Record: both index by position and by column name, and have keys()
Statement = tuple[str, Sequence[Any]]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MIGRATION_TIMEOUT = 3600.0  # seconds


class StorageError(LinernotesError):
    """The store cannot be used (not a database, not writable, unreachable). Its message is for the
    operator (it names a file or a server); users are told only that storage is unavailable."""


class Unavailable(StorageError):
    """The store cannot be reached or written right now; the same request may work later."""


class Conflict(StorageError):
    """A write broke a uniqueness or reference rule (e.g. a name already taken)."""


def is_postgres(target: str | Path) -> bool:
    """Whether ``target`` names a PostgreSQL database (a URL) rather than a SQLite file."""
    return str(target).startswith(POSTGRES_SCHEMES)


def shown_as(target: str | Path) -> str:
    """``target`` as logs and messages may show it: a URL loses its password."""
    text = str(target)
    if not is_postgres(text):
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:  # not a URL at all: show none of it (it may hold a password)
        return f"{text.split('://', 1)[0]}://(a URL that cannot be read)"
    if password is None:
        return text
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Transaction(ABC):
    """Statements that commit together, or not at all."""

    @abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement in the transaction; its rows (a write's ``RETURNING`` rows)."""

    @abstractmethod
    async def lock(self, *keys: int) -> None:
        """Hold locks on ``keys`` until the transaction ends, against every process on this store (taken in
        ascending order, so two transactions locking some of the same keys never deadlock)."""

    @abstractmethod
    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one writing statement once per row of parameters (the driver's executemany)."""

    async def fetch_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Row]:
        """Run one statement once per row of parameters, in order, each seeing the ones before; all their
        rows, in one list (on PostgreSQL sent together, in one round trip: the transaction's locks are held
        for one wait on the event loop, not one per statement)."""
        return [row for params in rows for row in await self.fetch(sql, params)]


class Engine(ABC):
    """One store: statements, transactions, migration scripts."""

    dialect: str
    label: str  # what logs and errors name: a file path, or the URL without its password
    # Run after the connection moved to another store under the same name (a SQLite file replaced while
    # the bot runs): the store migrates it and reads its salt. PostgreSQL never moves.
    reopened: Callable[[], Awaitable[None]] | None = None

    @abstractmethod
    async def open(self) -> None:
        """Connect (idempotent); ``StorageError`` naming the store when it cannot be used."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect (idempotent)."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """Whether the store is connected."""

    @abstractmethod
    def transaction(self) -> Any:
        """``async with engine.transaction() as tx``: one transaction."""

    @abstractmethod
    def serialized(self, *keys: int) -> Any:
        """``async with engine.serialized(*keys) as tx``: statements that each see everything done before
        them under the same keys, in any process (each statement atomic; together, only on PostgreSQL)."""

    @abstractmethod
    def snapshot(self) -> Any:
        """``async with engine.snapshot() as tx``: a transaction that only reads, every statement seeing the
        store as it was at its first, without holding up writers (other processes keep writing)."""

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement on its own (committed at once) and return its rows."""
        async with self.transaction() as tx:
            return await tx.fetch(sql, params)

    async def run(self, statements: Sequence[Statement]) -> None:
        """Run several statements as one transaction."""
        async with self.transaction() as tx:
            for sql, params in statements:
                await tx.fetch(sql, params)

    @abstractmethod
    async def start_migrations(self) -> None:
        """Create ``schema_migrations`` when the store has none (safe when processes start together)."""

    @abstractmethod
    async def apply(self, version: int, name: str, sql: str) -> bool:
        """Run migration ``version`` (statements without parameters) and record it in ``schema_migrations``,
        in one transaction; False when another process applied it first."""

    @abstractmethod
    async def tables(self) -> set[str]:
        """The tables the store holds."""

    @abstractmethod
    async def columns(self, table: str) -> list[str]:
        """A table's columns, in their order."""


# --- SQLite ---------------------------------------------------------------------------------------


def _sqlite_reason(error: sqlite3.Error) -> str:
    """What a SQLite error means for the operator."""
    text = str(error)
    if "not a database" in text:
        return f"not a SQLite database ({text})"
    if "readonly" in text or "read-only" in text:
        return f"cannot write to it ({text}); the bot stores its cache and ratings there"
    return text


def _sqlite_error(label: str, error: sqlite3.Error) -> Exception:
    """A SQLite error in the store's terms (a programming error stays what it is)."""
    if isinstance(error, sqlite3.IntegrityError):
        return Conflict(f"{label}: {error}")
    if isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.ProgrammingError
    ):
        return Unavailable(f"{label}: {_sqlite_reason(error)}")
    return error


class _SqliteTransaction(Transaction):
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.db.execute_fetchall(sql, tuple(params)))

    async def lock(self, *keys: int) -> None:
        """Nothing to do: the transaction began IMMEDIATE, so it already is the one writer."""

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.db.executemany(sql, rows)


class _SqliteStatements(Transaction):
    """Statements run one by one on the engine, each atomic on its own (``SqliteEngine.serialized``)."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self.engine.fetch(sql, params)

    async def lock(self, *keys: int) -> None:
        """Nothing to do: SQLite has one writer at a time."""

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for params in rows:
            await self.engine.fetch(sql, params)


class SqliteEngine(Engine):
    """One SQLite file in WAL mode, on one connection (aiosqlite's thread).

    The file is watched: one deleted while the bot runs is written back from the open connection, one
    replaced is switched to. Transactions begin IMMEDIATE (the writer's lock taken first, so two
    processes never deadlock upgrading a read), and one at a time on the connection."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = self.label = str(path)
        self._db: aiosqlite.Connection | None = None
        self._busy = asyncio.Lock()  # one transaction at a time on the one connection
        self._file_lock = asyncio.Lock()
        self._file_id: tuple[int, int] | None = None  # (device, inode) of the file opened
        self._recovering: asyncio.Task | None = None

    async def open(self) -> None:
        if self._db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level None: statements commit on their own unless a transaction is begun here.
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            self._db.row_factory = aiosqlite.Row
            await self._wal()
            # WAL's recommended level: commits survive a killed process (not a power cut) without an fsync
            # each, which a burst of requests would otherwise queue behind.
            await self._db.execute_fetchall("PRAGMA synchronous=NORMAL")
            await self._db.execute_fetchall("PRAGMA foreign_keys=ON")
        except sqlite3.Error as e:
            await self.close()
            raise StorageError(f"{self.path}: {_sqlite_reason(e)}") from None
        self._file_id = self._stat()

    async def _wal(self, patience: float = 10.0) -> None:
        """Switch the file to WAL, retrying while another connection holds it: SQLite answers a journal
        mode change with "database is locked" at once, without waiting out the busy timeout, when a
        connection opening the same new file at the same moment (another process starting) holds a lock."""
        assert self._db is not None
        deadline = time.monotonic() + patience
        while True:
            try:
                await self._db.execute_fetchall("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._db is None:
            return
        try:
            await self._db.close()
        finally:
            self._db = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("database is not open")
        return self._db

    def transaction(self) -> Any:
        return self._begun("BEGIN IMMEDIATE", "COMMIT")

    @asynccontextmanager
    async def serialized(self, *keys: int) -> AsyncIterator[Transaction]:
        # One writer at a time already: each statement on its own sees every one before it. A BEGIN and a
        # COMMIT would be two more hops to aiosqlite's thread, each waiting a turn of a busy event loop.
        yield _SqliteStatements(self)

    def snapshot(self) -> Any:
        # DEFERRED: in WAL mode a reading transaction sees the file as of its first read and takes no
        # writer's lock, so the bot's writes go on meanwhile. It only read: nothing to keep.
        return self._begun("BEGIN DEFERRED", "ROLLBACK")

    @asynccontextmanager
    async def _begun(self, begin: str, end: str) -> AsyncIterator[Transaction]:
        """A transaction begun with ``begin`` and ended with ``end`` (rolled back on any error)."""
        await self._follow_file()
        async with self._busy:
            await self._begin(begin)
            try:
                yield _SqliteTransaction(self.db)
                await self.db.execute_fetchall(end)
            except BaseException as e:
                if self.db.in_transaction:
                    await self.db.execute_fetchall("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise _sqlite_error(self.label, e) from e
                raise

    async def _begin(self, begin: str) -> None:
        """Run ``begin``. A task cancelled while it waits for the writer's lock (another process writing)
        does not stop the statement in aiosqlite's thread: a ROLLBACK queued behind it there ends the
        transaction it then begins, before the connection goes to the next user (who could not begin one).
        No task of its own: with a burst on the loop, a new task's first step waits a whole turn."""
        try:
            await self.db.execute_fetchall(begin)
        except asyncio.CancelledError:
            with contextlib.suppress(sqlite3.Error):  # "no transaction is active": the BEGIN failed
                await self.db.execute_fetchall("ROLLBACK")
            raise
        except sqlite3.Error as e:
            raise _sqlite_error(self.label, e) from e

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # A single statement is atomic on its own: no BEGIN, so reads never wait for the writer's lock.
        await self._follow_file()
        async with self._busy:
            try:
                return list(await self.db.execute_fetchall(sql, tuple(params)))
            except sqlite3.Error as e:
                raise _sqlite_error(self.label, e) from e

    async def start_migrations(self) -> None:
        await self.fetch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied REAL)"
        )

    async def apply(self, version: int, name: str, sql: str) -> bool:
        quoted = name.replace("'", "''")  # executescript takes no parameters
        async with self._busy:
            try:
                # IMMEDIATE: a second process starting at the same moment waits for the writer's lock.
                await self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_migrations VALUES ({version}, '{quoted}', "
                    f"{time.time()});\nCOMMIT;"
                )
            except sqlite3.Error:
                if self.db.in_transaction:
                    await self.db.execute_fetchall("ROLLBACK")
                done = await self.db.execute_fetchall(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                )
                if done:
                    return False  # the other process applied it first
                raise
        return True

    async def tables(self) -> set[str]:
        rows = await self.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
        )
        return {r[0] for r in rows}

    async def columns(self, table: str) -> list[str]:
        return [r["name"] for r in await self.fetch("SELECT name FROM pragma_table_info(?)", (table,))]

    # --- the file under the connection ------------------------------------------------------------

    def _stat(self) -> tuple[int, int] | None:
        """(device, inode) of the file at our path now; None when there is none."""
        if self.path == ":memory:":
            return None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    async def _follow_file(self) -> None:
        """Notice the file being deleted or replaced under the open connection, and recover."""
        if self._recovering is asyncio.current_task():
            return  # the recovery's own statements (``reopened``: migrations on a new file)
        if not self._file_lock.locked() and (self._file_id is None or self._stat() == self._file_id):
            return
        async with self._file_lock:  # callers arriving during a recovery wait for it
            now = self._stat()
            if self._file_id is None or now == self._file_id or self._db is None:
                return  # another caller recovered meanwhile
            self._recovering = asyncio.current_task()
            try:
                await self._switch(now)
                await self.open()
                if self.reopened is not None:
                    await self.reopened()
            finally:
                self._recovering = None

    async def _switch(self, now: tuple[int, int] | None) -> None:
        """Leave the file we had open: written back to our path when it was deleted."""
        async with self._busy:
            # Everything into the old file, and its write-ahead log emptied: a log left beside a new file
            # under the same name would be replayed into it.
            await self.db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
            if now is None:
                log.error("%s was deleted while the bot was running: writing the open copy back", self.path)
                await self._write_back()
            else:
                log.warning("%s was replaced while the bot was running: switching to the new file", self.path)
            old, self._db, self._file_id = self._db, None, None
            await old.close()

    async def _write_back(self) -> None:
        """Copy the open (deleted) database to a new file at our path."""
        restore = f"{self.path}.restore-{os.getpid()}"
        target = await aiosqlite.connect(restore)
        try:
            await self.db.backup(target)
        finally:
            await target.close()
        os.replace(restore, self.path)


# --- PostgreSQL -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (our SQL has no ``?`` inside literals)."""
    count = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


def _postgres_error(label: str, error: BaseException) -> BaseException:
    """An asyncpg error in the store's terms (a programming error stays what it is)."""
    import asyncpg

    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return Conflict(f"{label}: {error}")
    unavailable = (
        asyncpg.PostgresConnectionError,  # lost, refused, the server shutting down or starting up
        asyncpg.InterfaceError,  # the connection closed under us
        # A connection whose protocol is stuck: the server's farewell (a restart) arrived while it was idle
        # and the next statement found it still waiting for the end of that error ("another operation is
        # in progress"). The pool replaces the connection when it comes back.
        asyncpg.InternalClientError,
        asyncpg.OperatorInterventionError,  # the administrator shut the server down
        asyncpg.InsufficientResourcesError,  # disk full, too many connections
        asyncpg.ReadOnlySQLTransactionError,  # a standby, or default_transaction_read_only
        OSError,
        asyncio.TimeoutError,
    )
    if isinstance(error, unavailable):
        return Unavailable(f"{label}: {type(error).__name__}: {error}".rstrip(": "))
    return error


class _PostgresTransaction(Transaction):
    def __init__(self, conn: Any, sql: Callable[[str], str]) -> None:
        self.conn = conn
        self.sql = sql

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self.conn.fetch(self.sql(sql), *params))

    async def lock(self, *keys: int) -> None:
        for key in sorted(set(keys)):
            await self.conn.execute("SELECT pg_advisory_xact_lock($1)", key)

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self.conn.executemany(self.sql(sql), rows)

    async def fetch_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Row]:
        return list(await self.conn.fetchmany(self.sql(sql), rows))  # asyncpg pipelines them


class PostgresEngine(Engine):
    """A PostgreSQL database through an asyncpg pool. A connection the server dropped (a restart) is
    replaced on the next request; the request that found it broken fails as ``Unavailable``."""

    dialect = "postgresql"
    POOL = 8  # connections per process: a burst of requests shares them
    TIMEOUT = 5.0  # seconds to connect, or for a statement: a stuck server fails a request, not hangs it

    def __init__(self, url: str) -> None:
        self.url = url
        self.label = shown_as(url)
        self._pool: Any = None
        self._sql: dict[str, str] = {}  # statement text -> its numbered form

    def _numbered(self, sql: str) -> str:
        found = self._sql.get(sql)
        if found is None:
            found = self._sql[sql] = numbered(sql)
        return found

    async def open(self) -> None:
        if self._pool is not None:
            return
        import asyncpg

        errors = (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError)
        try:
            # No floor (min_size 0): connections open on demand, so a server away is retried by the next
            # request rather than by a background loop. This connects to nothing yet.
            pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=self.POOL, timeout=self.TIMEOUT, command_timeout=self.TIMEOUT
            )
        except errors as e:  # a URL asyncpg cannot read
            raise StorageError(f"{self.label}: {type(e).__name__}: {e}") from None
        try:
            # Reachable, and the credentials work: said now, not at a first request.
            async with pool.acquire():
                pass
        except errors as e:
            pool.terminate()
            raise StorageError(f"{self.label}: cannot connect ({type(e).__name__}: {e})") from None
        self._pool = pool

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        try:
            await asyncio.wait_for(pool.close(), 10)
        except (TimeoutError, OSError):
            pool.terminate()

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    @property
    def pool(self) -> Any:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    def transaction(self) -> Any:
        return self._transaction()

    @asynccontextmanager
    async def serialized(self, *keys: int) -> AsyncIterator[Transaction]:
        async with self._transaction() as tx:
            await tx.lock(*keys)
            yield tx

    def snapshot(self) -> Any:
        # REPEATABLE READ: every statement sees the snapshot of the first (READ COMMITTED, the default,
        # takes a new one per statement, so two tables read one after the other could disagree).
        return self._transaction(isolation="repeatable_read", readonly=True)

    @asynccontextmanager
    async def _transaction(self, **options: Any) -> AsyncIterator[Transaction]:
        """A transaction on one of the pool's connections (``options``: asyncpg's, e.g. its isolation)."""
        with self._mapped():
            async with self.pool.acquire() as conn, conn.transaction(**options):
                yield _PostgresTransaction(conn, self._numbered)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._mapped():
            return list(await self.pool.fetch(self._numbered(sql), *params))

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """asyncpg's errors in the store's terms (``_postgres_error``); others as they are."""
        try:
            yield
        except Exception as e:
            mapped = _postgres_error(self.label, e)
            if mapped is e:
                raise
            raise mapped from e

    MIGRATING = 0x6C6E6D67  # the advisory lock processes starting together migrate under, one at a time

    async def start_migrations(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            # IF NOT EXISTS alone races: two sessions creating it at once collide in the catalog.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self.MIGRATING)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version BIGINT PRIMARY KEY, name TEXT, applied DOUBLE PRECISION)"
            )

    async def apply(self, version: int, name: str, sql: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self.MIGRATING)
            if await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = $1", version):
                return False
            # No arguments: the simple protocol, several statements at once. A migration may rewrite every
            # row of a big table: it gets an hour, not the request path's few seconds.
            await conn.execute(sql, timeout=MIGRATION_TIMEOUT)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2, $3)", version, name, time.time()
            )
        return True

    async def tables(self) -> set[str]:
        rows = await self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {r[0] for r in rows}

    async def columns(self, table: str) -> list[str]:
        rows = await self.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]


def engine_for(target: str | Path) -> Engine:
    """The engine for a ``--db`` value: a PostgreSQL URL, else a SQLite file's path."""
    if is_postgres(target):
        return PostgresEngine(str(target))
    return SqliteEngine(target)
