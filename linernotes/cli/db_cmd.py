"""``linernotes db copy``: move the bot's store into another, e.g. from its SQLite file to a PostgreSQL
server several bot processes share (the work is ``bot.copy``'s; this reads the flags and prints the counts)."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field

from linernotes.common.flags import add_flags, flag

STORE = "sqlite:PATH, a file's path, or a postgresql://USER[:PASSWORD]@HOST[:PORT]/DB URL"


@dataclass(frozen=True)
class CopyArgs:
    """Where ``linernotes db copy`` reads and writes."""

    source: str = field(metadata=flag(f"the store to copy: {STORE}", name="--from", metavar="STORE"))
    target: str = field(
        metadata=flag(
            f"an empty store to copy it into (migrated first): {STORE}", name="--to", metavar="STORE"
        )
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``db`` parser with its ``copy`` action."""
    p = sub.add_parser("db", help="the bot's store: copy it into another (SQLite or PostgreSQL)")
    dsub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    c = dsub.add_parser(
        "copy",
        help="copy every row and id of a store into an empty one, counts checked",
        description="Copy the bot's store (a consistent snapshot, even while a bot writes to it) into an "
        "empty store, in one transaction; refuses a target that holds rows already.",
    )
    add_flags(c, CopyArgs)
    c.set_defaults(handler=run_copy)


def run_copy(args: argparse.Namespace) -> int:
    """Copy, then print the rows per table and the time taken."""
    from linernotes.bot.copy import copy_store
    from linernotes.bot.engines import shown_as

    copied = asyncio.run(copy_store(args.source, args.target))
    width = max(len(name) for name in copied.rows)
    print(f"{'table':<{width}}  {'rows':>9}")
    for name, rows in copied.rows.items():
        print(f"{name:<{width}}  {rows:>9}")
    print(
        f"copied {copied.total} rows in {copied.seconds:.1f} s "
        f"from {shown_as(args.source)} to {shown_as(args.target)}"
    )
    return 0
