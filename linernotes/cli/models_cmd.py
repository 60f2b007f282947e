"""``linernotes models add|list``: the operator's side of servers' own models (``/model`` is the managers').

``add`` registers a LoRA adapter trained outside the bot (``linernotes adapter --work DIR`` writes
``DIR/checkpoint``; ``linernotes export RUN`` writes one for a ``train --lora`` run) as a server's model,
with the bot's settings (``--config``, ``LINERNOTES_*``), as ``linernotes bot`` reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from linernotes.common.errors import ConfigError
from linernotes.common.flags import add_flags, flag

SERVER_ID = (
    "the server's id, a number (in Discord: Developer Mode on, right-click the server, Copy Server ID)"
)


@dataclass(frozen=True)
class ModelsAddArgs:
    """What ``linernotes models add`` registers, and where the bot's settings are."""

    adapter: Path = field(
        metadata=flag("adapter checkpoint trained on the bot's checkpoint", positional=True, metavar="PATH")
    )
    # Text, not int: guild_id() refuses a bad id with what a server id looks like.
    guild: str = field(metadata=flag(SERVER_ID, metavar="ID"))
    name: str = field(metadata=flag("its name in /model (1-32 letters, digits, spaces, - or _)"))
    use: bool = field(
        default=False, metadata=flag("make it the server's model (default: only if it uses none)")
    )
    checkpoint: str | None = field(
        default=None, metadata=flag("the bot's checkpoint (or the settings' checkpoint)")
    )
    db: str | None = field(
        default=None, metadata=flag("the bot's database (default: the settings', else linernotes.sqlite3)")
    )
    config: str | None = field(
        default=None, metadata=flag("the bot's TOML settings file (models_dir, models_per_server, ...)")
    )


@dataclass(frozen=True)
class ModelsListArgs:
    """Which models ``linernotes models list`` prints."""

    db: str = field(metadata=flag("the bot's database"))
    guild: str | None = field(default=None, metadata=flag(SERVER_ID, metavar="ID"))


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``models`` parser with its ``add`` and ``list`` actions."""
    p = sub.add_parser(
        "models", help="servers' own models: add an adapter trained outside the bot, list them"
    )
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    a = msub.add_parser(
        "add", help="register a LoRA adapter checkpoint as a server's model (served once the bot restarts)"
    )
    add_flags(a, ModelsAddArgs)
    a.set_defaults(handler=run_add)

    ls = msub.add_parser("list", help="every server's models (or one server's), and which one each uses")
    add_flags(ls, ModelsListArgs)
    ls.set_defaults(handler=run_list)


def guild_id(text: str) -> int:
    """The server id ``--guild`` gives, or a ConfigError saying what one looks like."""
    digits = text.strip()
    # A Discord id (a snowflake) is a positive 64-bit number; SQLite stores up to 2**63 - 1.
    if not (digits.isascii() and digits.isdigit() and 0 < int(digits) < 2**63):
        raise ConfigError(f"--guild {text!r}: not a Discord server id; give {SERVER_ID}")
    return int(digits)


def run_add(args: argparse.Namespace) -> int:
    """Register the adapter and say when the bot serves it."""
    from linernotes.bot.config import load_config
    from linernotes.bot.model_admin import add_adapter
    from linernotes.bot.models import CHECKPOINT

    guild = guild_id(args.guild)
    config = load_config(args.config, os.environ, checkpoint=args.checkpoint, database=args.db)
    added = asyncio.run(add_adapter(config, guild, args.name, args.adapter, args.use))
    model = added.model
    role = (
        "now the server's model"
        if added.active
        else "the server keeps its current model (/model use to switch)"
    )
    kinds = ", ".join(added.card.kinds)
    print(
        f"added {model.name!r} for server {model.guild_id}: adapter {model.model_id} (knows {kinds}), {role}"
    )
    print(f"copied to {Path(model.path) / CHECKPOINT}")
    # Ready adapters are attached at start-up, on /reload, and at each look at the store (ServerModels.sync).
    if config.sync_interval > 0:
        print(
            f"a running bot loads it within {config.sync_interval:.0f} s (sync_interval); a stopped one when it starts"
        )
    else:
        print("the bot serves it from its next start: restart a running bot (or /reload it) to load it")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print one line per model."""
    from linernotes.bot.model_admin import list_models

    guild = guild_id(args.guild) if args.guild is not None else None
    found = asyncio.run(list_models(args.db, guild))
    for model, active in found:
        note = f": {model.error}" if model.status == "failed" and model.error else ""
        adapter = f", adapter {model.model_id}" if model.model_id else ""
        print(
            f"server {model.guild_id}: {model.name!r} {model.status}{note}{adapter}, "
            f"on {model.base_model_id}{', in use' if active else ''}"
        )
    if not found:
        print("no server models" + (f" in server {guild}" if guild is not None else ""))
    return 0
