"""``linernotes playground``: the real bot in a simulated Discord, used from a web page on this machine.

SimCord's preview serves a Discord-like page on 127.0.0.1 whose composer, reactions and buttons act as
real members of the simulated server, so everything the bot does is the code that runs in production:
the same commands, cache, worker and database (``linernotes feedback export`` reads its ratings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from linernotes.cli.chat import say
from linernotes.cli.demo import (
    demo_home,
    ensure_model,
    has_model,
    quiet_logging,
    simulated_bot,
)
from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.common.flags import add_flags, flag

# What ``simcord[preview]`` adds, as SimCord checks it when a preview opens: checked up front so a
# missing extra is reported before minutes of model building, not after.
PREVIEW_MODULES = ("simcord", "aiohttp", "markdown_it", "linkify_it", "regex", "PIL")
INSTALL_HINT = "pip install 'linernotes[playground]'"
MEMBERS = ("alice", "bob")
WARM_LIMIT = 48  # generations stored before the page opens on a new model: most of the grid's first keys
REUSE_WARM_LIMIT = 4  # on later runs: one batch, so the page opens within seconds on a CPU


@dataclass(frozen=True)
class PlaygroundArgs:
    """What ``linernotes playground`` serves, and where."""

    checkpoint: str | None = field(
        default=None,
        metadata=flag("checkpoint (default: the demo's model)", positional=True, nargs="?", metavar="CKPT"),
    )
    port: int = field(default=0, metadata=flag("port on 127.0.0.1 (0: any free port)"))
    db: str | None = field(
        default=None,
        metadata=flag(
            "database for the cache and ratings (default: the demo's, .linernotes/demo/bot.sqlite3)"
        ),
    )
    site_port: int = field(
        default=0, metadata=flag("port on 127.0.0.1 of the bot's website and JSON API (0: any free port)")
    )
    warm: int | None = field(
        default=None,
        metadata=flag(
            f"generations to store before the page opens (default {WARM_LIMIT} when the demo model was "
            f"just trained, else {REUSE_WARM_LIMIT} to top up the busiest keys; 0: none)",
            metavar="N",
        ),
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``playground`` parser."""
    p = sub.add_parser(
        "playground",
        help="use the real bot from a browser: a simulated Discord server served on 127.0.0.1",
    )
    add_flags(p, PlaygroundArgs)
    p.set_defaults(handler=run)


def require_preview() -> None:
    """Fail with the install command when the ``playground`` extra is missing."""
    missing = [name for name in PREVIEW_MODULES if find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"the playground needs the 'playground' extra ({', '.join(missing)} not installed): {INSTALL_HINT}"
        )


def check_port(port: int) -> None:
    """Fail now, not after the model is loaded and warmed, when the port can't be had on 127.0.0.1."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be between 0 and 65535")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the page's server binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            raise ConfigError(f"--port {port}: can't listen on 127.0.0.1:{port} ({e.strerror})") from None


def run(args: argparse.Namespace) -> int:
    """The playground command: serve until Ctrl-C (or "End preview session" in the page)."""
    require_preview()
    check_port(args.port)
    if args.site_port:
        check_port(args.site_port)
    if args.warm is not None and args.warm < 0:
        raise ConfigError(f"--warm {args.warm}: must be 0 or more")
    home = demo_home(None)
    built = False
    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
        if not checkpoint.is_dir():
            raise CheckpointError(f"{checkpoint}: no such checkpoint directory")
    else:
        home.mkdir(parents=True, exist_ok=True)
        built = not has_model(home)
        checkpoint = ensure_model(home)
    database = Path(args.db) if args.db else home / "bot.sqlite3"
    database.parent.mkdir(parents=True, exist_ok=True)
    quiet_logging()
    warm = args.warm if args.warm is not None else (WARM_LIMIT if built else REUSE_WARM_LIMIT)
    asyncio.run(serve(checkpoint, database, args.port, warm, args.site_port))
    return 0


async def serve(checkpoint: Path, database: Path, port: int, warm_limit: int, site_port: int = 0) -> None:
    """Start the bot in SimCord, warm its cache, serve the page; always close the bot on the way out."""
    import simcord

    stop = asyncio.Event()
    with stop_on_signals(stop):
        say(f"Starting the bot on {checkpoint} (database {database})…")
        # --warm 0: none before the page opens (the bot's own setting cannot be 0); /warm still works.
        bot = simulated_bot(checkpoint, database, warm_limit=warm_limit or WARM_LIMIT, web_port=site_port)
        try:
            # Generous settle: a page action waits for model work on the worker thread to finish.
            async with simcord.run(bot, settle_timeout=600, check_errors=False) as env:
                channel, members = build_world(env)
                await bot.user.edit(username="linernotes")  # the simulated app's name, not "TestBot"
                if not warm_limit or await unless_stopped(warm(bot), stop):
                    await show_page(env, channel, members, port, stop)
                say("Stopping…")
        finally:
            await bot.close()  # scheduler, worker, database; idempotent after SimCord's own shutdown
    say(f"Stopped. Ratings are in {database}: linernotes feedback export --db {database} --out DIR")


async def show_page(env: Any, channel: Any, members: list[Any], port: int, stop: asyncio.Event) -> None:
    """Serve the channel to the members until stopped or the page ends the session."""
    async with env.preview(channel, viewers=members, layout="channel", port=port) as pv:
        announce(pv.url, env.bot.site_url)
        await unless_stopped(pv.wait_closed(), stop)


def build_world(env: Any) -> tuple[Any, list[Any]]:
    """A server with #general, alice (who may manage it: she sees /warm and /reload) and bob."""
    import discord

    guild = env.create_guild("linernotes playground")
    channel = guild.create_text_channel("general")
    moderator = guild.create_role("moderator", permissions=discord.Permissions(manage_guild=True))
    alice = guild.add_member(env.create_user(MEMBERS[0]), roles=[moderator])
    bob = guild.add_member(env.create_user(MEMBERS[1]))
    return channel, [alice, bob]


async def warm(bot: Any) -> None:
    """Fill the cache first, so the first requests in the page are answered at once."""
    started = time.time()
    stored = await bot.warm_now()
    say(f"Warm-up: {stored} new generations stored in {time.time() - started:.0f} s.")


def announce(url: str, site: str | None = None) -> None:
    """Print the page's address once: it carries the session's secret, so it goes nowhere else. The bot's
    website (public texts only, no key) is printed on a line of its own that does not start with it."""
    web = f"The bot's website and JSON API (what it wrote, with permalinks): {site}/\n" if site else ""
    say(
        f"\nPlayground ready: #general on a simulated server, members {' and '.join(MEMBERS)} "
        "(switch with 'Viewing as').\n"
        f"Open this address in a browser on this machine (it holds the session's key; don't share it):\n\n"
        f"    {url}\n\n"
        f"{web}Press Ctrl-C to stop."
    )


async def unless_stopped(work: Awaitable[Any], stop: asyncio.Event) -> bool:
    """Await ``work`` unless ``stop`` is set first (then cancel it); True when the work finished."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        finished = task.done()
        for pending in (task, stopper):
            pending.cancel()  # no-op on a finished task
        await asyncio.gather(task, stopper, return_exceptions=True)
    if finished:
        task.result()  # re-raise the work's own failure
    return finished


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Turn the first Ctrl-C (or SIGTERM) into a clean stop; a second one interrupts as usual."""
    loop = asyncio.get_running_loop()
    wanted = (signal.SIGINT, signal.SIGTERM)

    def first(_: int) -> None:
        stop.set()
        for sig in wanted:  # give the next signal back to Python: the way out if shutdown hangs
            loop.remove_signal_handler(sig)

    for sig in wanted:
        loop.add_signal_handler(sig, first, sig)
    try:
        yield
    finally:
        for sig in wanted:
            loop.remove_signal_handler(sig)
