"""``linernotes bot``, ``linernotes warm``, ``linernotes stats`` and ``linernotes feedback export``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from linernotes.common.errors import ConfigError, LinernotesError
from linernotes.model.card import WEIGHT_PRECISIONS

log = logging.getLogger(__name__)


def _settings_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="checkpoint directory (or LINERNOTES_CHECKPOINT)")
    p.add_argument("--db", help="SQLite database (default linernotes.sqlite3, or LINERNOTES_DATABASE)")
    p.add_argument("--config", help="TOML settings file (see bot.example.toml)")
    p.add_argument("--precision", choices=["auto", *WEIGHT_PRECISIONS])
    p.add_argument("--device")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bot``, ``warm``, ``stats`` and ``feedback`` parsers."""
    p = sub.add_parser("bot", help="run the Discord bot (token from DISCORD_TOKEN or .env)")
    _settings_flags(p)
    p.add_argument("--sync", help="auto | always | off | GUILD_ID (sync commands to one server, instantly)")
    p.set_defaults(handler=run_bot)

    p = sub.add_parser("warm", help="fill the bot's cache once, with a progress bar")
    _settings_flags(p)
    p.add_argument("--per-key", type=int, help="generations to keep ready per cache key")
    p.add_argument("--limit", type=int, help="store at most this many generations (default: fill every key)")
    p.set_defaults(handler=run_warm)

    p = sub.add_parser("stats", help="the bot's totals over every server (each server's /stats sees its own)")
    p.add_argument("--db", required=True)
    p.set_defaults(handler=run_stats)

    p = sub.add_parser("feedback", help="ratings as training data")
    fsub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    e = fsub.add_parser("export", help="write approved generations, all ratings and preference pairs")
    e.add_argument("--db", required=True)
    e.add_argument("--out", required=True)
    e.add_argument(
        "--model",
        help="only this model id's ratings (a server's model: /model list and each answer's footer show its id)",
    )
    e.set_defaults(handler=run_feedback_export)


def _config(args: argparse.Namespace, **extra):
    from linernotes.bot.config import load_config

    return load_config(
        args.config,
        os.environ,
        checkpoint=args.checkpoint,
        database=args.db,
        precision=args.precision,
        device=args.device,
        **extra,
    )


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

    config = _config(args, sync=args.sync)
    token = _token()
    discord.utils.setup_logging(level=logging.INFO, root=False)

    async def main() -> None:
        bot = LinernotesBot(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        async with bot:
            await bot.db.open()  # a bad database is reported before connecting to Discord
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
    from linernotes.bot.storage import Database
    from linernotes.bot.warm import warm_as_configured
    from linernotes.model.generator import Generator
    from linernotes.model.worker import GenerationWorker

    config = _config(args, per_key=args.per_key)

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
    print(f"stored {stored} generations in {config.database}")
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
