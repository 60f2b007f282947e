"""``linernotes web``: the bot's cache as a read-only website and JSON API, in a process of its own.

It reads the bot's database (while the bot runs, or not) and records its showings there; it loads no
model and never generates. With ``--checkpoint`` it reads that checkpoint's card only: the API checks
tag values against it and serves its cache, and the operator view shows its training cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from linernotes.bot.web.config import WebConfig
from linernotes.common.flags import add_flags, flag, from_args

if TYPE_CHECKING:
    from linernotes.model.card import Card


@dataclass(frozen=True)
class WebArgs:
    """What ``linernotes web`` serves from."""

    db: str = field(metadata=flag("the bot's database (the site reads it and records its showings in it)"))
    checkpoint: str | None = field(
        default=None,
        metadata=flag(
            "the checkpoint the bot serves (its card only): the API serves its cache and checks tags against "
            "it; default: the model the bot last served, as its database records",
            metavar="CKPT",
        ),
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``web`` parser."""
    p = sub.add_parser("web", help="serve the cache as a read-only website and JSON API (never generates)")
    add_flags(p, WebArgs)
    add_flags(p.add_argument_group("site settings"), WebConfig)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    from linernotes.model.card import read_card

    config = from_args(WebConfig, args)
    card = read_card(Path(args.checkpoint)) if args.checkpoint else None
    asyncio.run(serve(args.db, config, card))
    return 0


async def serve(database: str, config: WebConfig, card: Card | None) -> None:
    """Open the database, serve the site, and close both on a signal."""
    from linernotes.bot.storage import existing
    from linernotes.bot.web.app import Site

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with existing(database) as db:
        site = Site(db, config, lambda: card)
        address = await site.start()
        try:
            print(_banner(address, site.url, config, card), flush=True)
            await stop.wait()
        finally:
            await site.stop()
    print("Stopped.", flush=True)


def _banner(address: str, url: str, config: WebConfig, card: Card | None) -> str:
    """What the site serves, where, from which model, and whether the operator view is on (never the token)."""
    token = "on" if os.environ.get(config.operator_env) else f"off (set {config.operator_env} to turn it on)"
    served = card.model_id if card else "the model the bot last served"
    lines = [f"Serving {address}/ (Ctrl-C to stop)"]
    if url != address:
        lines.append(f"  public address: {url}/")
    lines += [
        f"  pages: {url}/ and {url}/g/<id>; API: {url}/api/review?genre=...&score=..., /api/product?rating=..., "
        f"/api/lyrics?part=..., /api/g/<id>; serving {served}",
        f"  operator view {url}/stats: {token}",
    ]
    return "\n".join(lines)
