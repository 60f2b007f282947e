"""``linernotes bot``, ``linernotes warm``, ``linernotes stats`` and ``linernotes feedback export``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from dataclasses import dataclass, field, fields

from linernotes.bot.config import ENV_PREFIX, BotConfig, load_config
from linernotes.common.errors import ConfigError, LinernotesError
from linernotes.common.flags import add_flags, flag

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SettingsFile:
    """Where ``linernotes bot`` and ``warm`` read the bot's settings besides flags and the environment."""

    config: str | None = field(
        default=None,
        metadata=flag("TOML settings file, its [bot] table (see bot.example.toml)", metavar="FILE"),
    )


@dataclass(frozen=True)
class WarmArgs:
    """What ``linernotes warm`` takes besides the bot's settings."""

    limit: int | None = field(
        default=None, metadata=flag("store at most this many generations; default: fill every key")
    )


@dataclass(frozen=True)
class StatsArgs:
    """What ``linernotes stats`` reads."""

    db: str = field(metadata=flag("the bot's database"))


@dataclass(frozen=True)
class FeedbackExportArgs:
    """What ``linernotes feedback export`` reads and where it writes."""

    db: str = field(metadata=flag("the bot's database"))
    out: str = field(metadata=flag("directory to write train.jsonl, rated.jsonl and pairs.jsonl"))
    model: str | None = field(
        default=None,
        metadata=flag(
            "only this model id's ratings (a server's model: /model list and each answer's footer show its id)"
        ),
    )


SETTINGS_HELP = (
    f"each also from --config FILE or a {ENV_PREFIX}<NAME> variable (e.g. {ENV_PREFIX}PER_KEY=5); "
    "a flag wins over the variable, which wins over the file"
)


def _settings_flags(p: argparse.ArgumentParser) -> None:
    """The bot's settings, one flag per ``BotConfig`` field; an unset flag leaves the file's or variable's."""
    add_flags(p, SettingsFile)
    add_flags(p.add_argument_group("bot settings", SETTINGS_HELP), BotConfig, layered=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bot``, ``warm``, ``stats`` and ``feedback`` parsers."""
    p = sub.add_parser("bot", help="run the Discord bot (token from DISCORD_TOKEN or .env)")
    _settings_flags(p)
    p.set_defaults(handler=run_bot)

    p = sub.add_parser("warm", help="fill the bot's cache once, with a progress bar")
    add_flags(p, WarmArgs)
    _settings_flags(p)
    p.set_defaults(handler=run_warm)

    p = sub.add_parser("stats", help="the bot's totals over every server (each server's /stats sees its own)")
    add_flags(p, StatsArgs)
    p.set_defaults(handler=run_stats)

    p = sub.add_parser("feedback", help="ratings as training data")
    fsub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    e = fsub.add_parser("export", help="write approved generations, all ratings and preference pairs")
    add_flags(e, FeedbackExportArgs)
    e.set_defaults(handler=run_feedback_export)


def _config(args: argparse.Namespace) -> BotConfig:
    """The bot's settings: its flags over the environment over the ``--config`` file."""
    flags = {f.name: getattr(args, f.name) for f in fields(BotConfig)}
    return load_config(args.config, os.environ, **flags)


def _token() -> str:
    """DISCORD_TOKEN from the environment or a .env file; never logged or echoed."""
    from dotenv import dotenv_values

    token = os.environ.get("DISCORD_TOKEN") or dotenv_values(".env").get("DISCORD_TOKEN")
    if not token:
        raise ConfigError("DISCORD_TOKEN is not set (export it, or put DISCORD_TOKEN=... in a .env file)")
    return token


def run_bot(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM, then close cleanly (scheduler, worker, database)."""
    import aiohttp
    import discord

    from linernotes.bot.app import LinernotesBot

    config = _config(args)
    token = _token()
    discord.utils.setup_logging(level=logging.INFO, root=False)

    async def main() -> None:
        bot = LinernotesBot(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        async with bot:
            await bot.open_database()  # a bad database is reported before connecting to Discord
            try:
                await bot.start(token)
            except discord.LoginFailure:
                raise ConfigError(
                    "Discord rejected the token in DISCORD_TOKEN (reset it in the developer portal)"
                ) from None
            except discord.PrivilegedIntentsRequired as e:
                raise ConfigError(str(e)) from None
            except (aiohttp.ClientError, OSError) as e:
                raise LinernotesError(
                    f"could not reach Discord ({type(e).__name__}: {e}); check the network"
                ) from None

    asyncio.run(main())
    return 0


def run_warm(args: argparse.Namespace) -> int:
    """Warm the cache once from the command line, with the bot's settings (backend included)."""
    from tqdm.auto import tqdm

    from linernotes.bot.config import generate_config
    from linernotes.bot.engines import shown_as
    from linernotes.bot.storage import Database
    from linernotes.bot.warm import warm_as_configured
    from linernotes.model.generator import Generator
    from linernotes.model.worker import GenerationWorker

    config = _config(args)

    async def main() -> int:
        db = Database(config.database)
        await db.open()  # closes itself when it fails
        worker = None
        bar = tqdm(desc="warming", unit="gen")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            gen = Generator.load(config.checkpoint, generate_config(config))
            worker = GenerationWorker(gen, max_queue=1_000_000, timeout_per_text=config.job_timeout)
            worker.start()
            return await warm_as_configured(config, db, worker, limit=args.limit, progress=progress)
        finally:
            bar.close()
            if worker is not None:
                await worker.stop()
            await db.close()

    stored = asyncio.run(main())
    print(f"stored {stored} generations in {shown_as(config.database)}")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the operator's totals: every server, every generation."""
    from linernotes.bot.storage import existing

    async def read() -> dict[str, int]:
        async with existing(args.db) as db:
            return await db.totals()

    t = asyncio.run(read())
    print(f"{t['generations']} generations, {t['served']} answers served, {t['up']} 👍 and {t['down']} 👎")
    return 0


def run_feedback_export(args: argparse.Namespace) -> int:
    """Export ratings."""
    from linernotes.bot.feedback import export_feedback

    counts = asyncio.run(export_feedback(args.db, args.out, args.model))
    print(
        f"wrote {args.out}/train.jsonl ({counts['train']} approved), rated.jsonl ({counts['rated']}), "
        f"pairs.jsonl ({counts['pairs']}); train on them with `linernotes train ... --extra-data {args.out}`"
    )
    return 0
