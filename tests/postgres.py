"""A real PostgreSQL server for tests: started from this machine's binaries in a temp dir, stopped after.

The server refuses to run as root (sessions and CI run as root), so it runs as the ``postgres`` system user
that Debian's package creates. Each test gets its own schema (``url(schema)``), which costs milliseconds
where a database would cost a copy of one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


def binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (on PATH, or Debian's versioned one)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def why_not() -> str | None:
    """Why a server cannot be started here, or None when it can."""
    if binaries() is None:
        return "PostgreSQL is not installed here (no initdb): `apt-get install postgresql` (make setup does)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server in its own data directory on a free port."""

    def __init__(self) -> None:
        bin_dir = binaries()
        assert bin_dir is not None, why_not()
        self.bin = bin_dir
        # Not under pytest's temp dirs: they are private to root, and the server runs as another user.
        self.dir = Path(tempfile.mkdtemp(prefix="linernotes-pg-"))
        self.port = _free_port()
        self.running = False

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            shutil.chown(self.dir, SUPERUSER)
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed: {done.stderr or done.stdout}")

    def start(self) -> PostgresServer:
        """initdb (once) and start; returns self."""
        data = self.dir / "data"
        if not data.exists():
            self._run("initdb", "-D", str(data), "-A", "trust", "-U", SUPERUSER, "--no-sync")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``immediate``: as a crash would)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")
            self.running = False

    def remove(self) -> None:
        """Stop, and delete the data directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, schema: str | None = None) -> str:
        """A URL for the ``postgres`` database; with ``schema``, every table lands in that schema."""
        base = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        return f"{base}?search_path={schema}" if schema else base

    def psql(self, sql: str) -> str:
        """Run SQL with psql; its output."""
        done = subprocess.run(
            ["psql", "-X", "-q", "-t", "-A", self.url(), "-c", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def new_schema(self, name: str) -> str:
        """Create an empty schema; the URL of a store in it."""
        self.psql(f"CREATE SCHEMA {name}")
        return self.url(name)
