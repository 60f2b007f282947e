"""Numbered schema migrations; each runs once and is recorded in ``schema_migrations``.

Written in SQLite's SQL. PostgreSQL runs the same numbers: ``postgres_ddl`` gives each its types (64-bit
integers: Discord's ids do not fit 32 bits; identity columns for SQLite's row ids), and the two that SQLite
had to write its own way (5 copies a table to change a CHECK, 7 declares triggers inline) say it again in
PostgreSQL's (``POSTGRES``).
"""

from __future__ import annotations

import re

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "generations, deliveries, ratings, demand",
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE generations (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            cache_key TEXT NOT NULL,
            tags TEXT NOT NULL,              -- JSON: the tags the text was generated for
            seed_line TEXT,
            text TEXT NOT NULL,
            model_id TEXT NOT NULL,
            sampling TEXT NOT NULL,          -- JSON, including the seed
            seed INTEGER NOT NULL,
            origin TEXT NOT NULL,            -- warm | request
            created REAL NOT NULL
        );
        CREATE INDEX generations_by_key ON generations (model_id, cache_key);
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            generation_id INTEGER NOT NULL REFERENCES generations (id),
            message_id INTEGER UNIQUE,       -- NULL while the message is being sent
            channel_id INTEGER NOT NULL,
            guild_id INTEGER,
            user_hash TEXT NOT NULL,
            requested TEXT NOT NULL,         -- JSON: what was asked for (the exact score)
            delivered REAL NOT NULL
        );
        CREATE INDEX deliveries_by_generation ON deliveries (generation_id);
        CREATE INDEX deliveries_by_channel ON deliveries (channel_id, generation_id);
        CREATE TABLE ratings (
            generation_id INTEGER NOT NULL REFERENCES generations (id),
            user_hash TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            message_id INTEGER NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (generation_id, user_hash)
        );
        CREATE TABLE demand (
            cache_key TEXT PRIMARY KEY,
            requests INTEGER NOT NULL,
            last REAL NOT NULL
        );
        """,
    ),
    (
        2,
        "private generations: never served from the cache",
        """
        ALTER TABLE generations ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
        UPDATE generations SET private = 1 WHERE seed_line IS NOT NULL;
        """,
    ),
    (
        3,
        "rating reactions: a vote follows the reactions a user still has",
        """
        CREATE TABLE reactions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- order of arrival: the newest one left is the vote
            message_id INTEGER NOT NULL,
            user_hash TEXT NOT NULL,
            vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
            generation_id INTEGER NOT NULL REFERENCES generations (id),
            added REAL NOT NULL,
            UNIQUE (message_id, user_hash, vote)
        );
        CREATE INDEX reactions_by_voter ON reactions (generation_id, user_hash);
        INSERT INTO reactions (message_id, user_hash, vote, generation_id, added)
            SELECT message_id, user_hash, vote, generation_id, updated FROM ratings ORDER BY updated;
        """,
    ),
    (
        4,
        "server models: adapters trained from a server's uploads, and which one each server uses",
        """
        CREATE TABLE server_models (
            id INTEGER PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'training', 'ready', 'failed')),
            base_model_id TEXT NOT NULL,     -- the bot's model it was trained on (an adapter fits no other)
            model_id TEXT,                   -- the adapter's own id, once ready (generations are keyed by it)
            path TEXT NOT NULL,              -- its directory: the upload, prepared data, run and adapter
            upload TEXT NOT NULL,            -- the file name as uploaded
            report TEXT NOT NULL,            -- JSON: what preparing kept and dropped; training figures
            error TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (guild_id, name)
        );
        CREATE TABLE server_settings (
            guild_id INTEGER PRIMARY KEY,
            active_model INTEGER REFERENCES server_models (id) ON DELETE SET NULL
        );
        """,
    ),
    (
        5,
        "server models: every state of a job, and names unique by their normal form",
        # SQLite cannot change a CHECK constraint: the table is copied. Dropping the old one sets every
        # server's choice to NULL (ON DELETE SET NULL, and foreign keys cannot be switched off inside a
        # transaction), so the choices are kept aside and put back. ``name_key`` is the name's normal form
        # (bot/names.py), which SQL cannot compute: rows from before are NULL (NULLs never collide) until
        # the bot's registry fills them in, renaming a name that collides with an older one's.
        """
        CREATE TABLE server_models_v5 (
            id INTEGER PRIMARY KEY,
            guild_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            name_key TEXT,                   -- the name's normal form: unique in its server
            status TEXT NOT NULL CHECK (
                status IN ('queued', 'preparing', 'training', 'sampling', 'ready', 'failed')
            ),
            base_model_id TEXT NOT NULL,
            model_id TEXT,
            path TEXT NOT NULL,
            upload TEXT NOT NULL,
            report TEXT NOT NULL,
            error TEXT,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        INSERT INTO server_models_v5 (id, guild_id, name, status, base_model_id, model_id, path, upload,
                                      report, error, created, updated)
            SELECT id, guild_id, name, status, base_model_id, model_id, path, upload, report, error,
                   created, updated
            FROM server_models;
        CREATE TEMP TABLE server_settings_v4 AS SELECT guild_id, active_model FROM server_settings;
        DROP TABLE server_models;
        ALTER TABLE server_models_v5 RENAME TO server_models;
        UPDATE server_settings SET active_model = (
            SELECT k.active_model FROM server_settings_v4 k WHERE k.guild_id = server_settings.guild_id
        );
        DROP TABLE server_settings_v4;
        CREATE UNIQUE INDEX server_models_by_name ON server_models (guild_id, name_key);
        """,
    ),
    (
        6,
        "generations: how many drafts each was chosen from by the checkpoint's ranker",
        """
        ALTER TABLE generations ADD COLUMN ranked INTEGER NOT NULL DEFAULT 1;
        """,
    ),
    (
        7,
        "the web: public ids, web showings, servers that publish, requests over time, generation costs",
        # A permalink's id is a random token (96 bits), never the row id: ids in URLs cannot be guessed.
        # Rows from before get one here (SQLite's randomblob draws from the OS's random source); new
        # rows get theirs from Python's ``secrets`` (``Database.add``). A showing on the web is a
        # delivery without a Discord channel or message (``via = 'web'``), so every showing of a
        # generation, whichever way, is one row and the least-shown rule counts them all. ``shown`` is
        # that count, kept by triggers in the same statement as the delivery's insert or delete, so
        # "least shown first" is an index walk instead of a count per cached generation.
        """
        ALTER TABLE generations ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
        UPDATE generations SET shown = (SELECT COUNT(*) FROM deliveries d WHERE d.generation_id = generations.id);
        CREATE TRIGGER deliveries_count_showing AFTER INSERT ON deliveries BEGIN
            UPDATE generations SET shown = shown + 1 WHERE id = NEW.generation_id;
        END;
        CREATE TRIGGER deliveries_uncount_showing AFTER DELETE ON deliveries BEGIN
            UPDATE generations SET shown = shown - 1 WHERE id = OLD.generation_id;
        END;
        CREATE INDEX generations_least_shown ON generations (model_id, cache_key, shown, id);
        ALTER TABLE generations ADD COLUMN public_id TEXT;
        UPDATE generations SET public_id = lower(hex(randomblob(12)));
        CREATE UNIQUE INDEX generations_by_public_id ON generations (public_id);
        ALTER TABLE deliveries ADD COLUMN via TEXT NOT NULL DEFAULT 'discord' CHECK (via IN ('discord', 'web'));
        CREATE TABLE published_servers (     -- servers whose managers made their models' texts public
            guild_id INTEGER PRIMARY KEY,
            since REAL NOT NULL
        );
        CREATE TABLE request_counts (        -- requests per key and hour, from Discord and the web API
            hour INTEGER NOT NULL,           -- hours since the epoch (UTC)
            source TEXT NOT NULL CHECK (source IN ('discord', 'web')),
            cache_key TEXT NOT NULL,
            requests INTEGER NOT NULL,
            PRIMARY KEY (hour, source, cache_key)
        );
        CREATE TABLE generation_costs (      -- what generating cost, per model id
            model_id TEXT PRIMARY KEY,
            texts INTEGER NOT NULL,          -- generations that came out acceptable
            failed INTEGER NOT NULL,         -- ... and those that did not
            tokens INTEGER NOT NULL,         -- new tokens decoded
            seconds REAL NOT NULL,           -- wall-clock seconds of the batches that wrote them
            updated REAL NOT NULL
        );
        """,
    ),
    (
        8,
        "several processes on one store: leases, warm-up runs, the trainer holding a job, where to tell its member",
        # A job is queued with no holder by a process that does not train (``trainer = false``); the trainer
        # claims it (``holder``: its process, alive while its ``process:HOLDER`` lease is renewed) and tells
        # the member in ``channel_id``. A trainer's own jobs carry its name from the start.
        """
        ALTER TABLE server_models ADD COLUMN holder TEXT;
        ALTER TABLE server_models ADD COLUMN channel_id INTEGER;
        CREATE TABLE leases (                -- work one process at a time may do, and who does it now
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,            -- the process: host, pid and a random token
            expires REAL NOT NULL            -- renewed while it works; a process that died loses it then
        );
        CREATE TABLE warm_runs (             -- each warm-up: which process, from when to when
            id INTEGER PRIMARY KEY,
            holder TEXT NOT NULL,
            started REAL NOT NULL,
            ended REAL
        );
        """,
    ),
]


# What PostgreSQL runs instead, where SQLite's form has no translation.
POSTGRES: dict[int, str] = {
    5: """
        ALTER TABLE server_models ADD COLUMN name_key TEXT;
        ALTER TABLE server_models DROP CONSTRAINT server_models_status_check;
        ALTER TABLE server_models ADD CONSTRAINT server_models_status_check CHECK (
            status IN ('queued', 'preparing', 'training', 'sampling', 'ready', 'failed')
        );
        ALTER TABLE server_models DROP CONSTRAINT server_models_guild_id_name_key;
        CREATE UNIQUE INDEX server_models_by_name ON server_models (guild_id, name_key);
        """,
    7: """
        ALTER TABLE generations ADD COLUMN shown BIGINT NOT NULL DEFAULT 0;
        UPDATE generations SET shown = (SELECT COUNT(*) FROM deliveries d WHERE d.generation_id = generations.id);
        CREATE FUNCTION deliveries_count_showing() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE generations SET shown = shown + 1 WHERE id = NEW.generation_id;
            ELSE
                UPDATE generations SET shown = shown - 1 WHERE id = OLD.generation_id;
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER deliveries_count_showing AFTER INSERT OR DELETE ON deliveries
            FOR EACH ROW EXECUTE FUNCTION deliveries_count_showing();
        CREATE INDEX generations_least_shown ON generations (model_id, cache_key, shown, id);
        ALTER TABLE generations ADD COLUMN public_id TEXT;
        -- 96 bits from the server's random source, as 24 hex digits (storage.public_token's form)
        UPDATE generations SET public_id = substr(md5(gen_random_uuid()::text), 1, 24);
        CREATE UNIQUE INDEX generations_by_public_id ON generations (public_id);
        ALTER TABLE deliveries ADD COLUMN via TEXT NOT NULL DEFAULT 'discord' CHECK (via IN ('discord', 'web'));
        """
    + MIGRATIONS[6][2][MIGRATIONS[6][2].index("CREATE TABLE published_servers") :],
}

_TYPES = [
    # SQLite's row ids: numbered by the server, and still writable (``db copy`` keeps every id).
    (
        re.compile(r"\bINTEGER PRIMARY KEY( AUTOINCREMENT)?"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
]


def postgres_ddl(sql: str) -> str:
    """A SQLite migration's statements with PostgreSQL's column types."""
    for pattern, replacement in _TYPES:
        sql = pattern.sub(replacement, sql)
    return sql


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """Every migration, in order, as ``dialect`` (``sqlite`` or ``postgresql``) runs it."""
    if dialect == "sqlite":
        return MIGRATIONS
    return [(v, name, postgres_ddl(POSTGRES.get(v, sql))) for v, name, sql in MIGRATIONS]
