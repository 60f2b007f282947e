"""The operator's side of server models (``linernotes models add|list``), from the database alone: no Discord,
no loaded model.

``add_adapter`` registers a LoRA adapter trained outside the bot (``linernotes adapter``, or ``linernotes
train --lora`` then ``export``) as one server's model. It passes the checks ``/model train`` applies (name
rules, the server's quota, a name unique in the server) and the one adapter check (``check_adapter``: its
card, config and every tensor against the bot's checkpoint), takes an id no model has written under, is
copied into ``models_dir`` where a trained adapter lies (its own files only: a symbolic link is refused),
and is registered ready in one write. The bot attaches ready adapters when it starts (and after a
/reload), so a running bot serves it from its next restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.bot.config import BotConfig
from linernotes.bot.models import CHECKPOINT, check_name, models_root, new_folder
from linernotes.bot.registry import STATUSES, ModelError, ModelRegistry, ServerModel
from linernotes.bot.storage import existing
from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.model.adapters import check_adapter
from linernotes.model.card import Card, read_card


@dataclass(frozen=True)
class Added:
    """An adapter now registered: its model row, its card, and whether its server now uses it."""

    model: ServerModel
    card: Card
    active: bool


async def add_adapter(config: BotConfig, guild_id: int, name: str, source: Path, use: bool = False) -> Added:
    """Check the adapter checkpoint at ``source`` against the bot's checkpoint and the server's limits, copy
    it into ``models_dir`` and register it ready; the server's model with ``use``, or when it has none."""
    if not config.server_models:
        raise ConfigError(
            "server models are off in the bot's settings (server_models = false); turn them on first"
        )
    with _about("--name"):
        name = check_name(name)
    base, source = _bot_card(config), Path(source)
    files = _own_files(source)  # first: nothing is read through a link
    # The one check the bot applies at start-up too: an adapter that passes here loads there.
    card = await asyncio.to_thread(check_adapter, source, base, Path(config.checkpoint))
    async with existing(config.database) as db:
        registry = ModelRegistry(db)
        await _check_server(registry, guild_id, config.models_per_server)
        await _check_unregistered(registry, card, source)
        model = await _copy_and_register(registry, config, guild_id, name, source, files, card, base)
        active = use or await registry.active(guild_id) is None
        if active:
            await registry.set_active(guild_id, model.id)
    return Added(model, card, active)


async def list_models(database: str | Path, guild_id: int | None = None) -> list[tuple[ServerModel, bool]]:
    """Every server's models (or one server's), oldest first, each with whether its server uses it."""
    async with existing(database) as db:
        registry = ModelRegistry(db)
        found = await (
            registry.of_server(guild_id) if guild_id is not None else registry.with_status(*STATUSES)
        )
        actives = await registry.actives()
    return [(m, actives.get(m.guild_id) == m.id) for m in found]


def _bot_card(config: BotConfig) -> Card:
    """The card of the checkpoint the bot serves (its settings' ``checkpoint``)."""
    try:
        return read_card(Path(config.checkpoint))
    except CheckpointError as e:  # the path may come from a settings file: say which setting it is
        raise CheckpointError(
            f"the bot's checkpoint (--checkpoint, or checkpoint in its settings): {e}"
        ) from None


@contextlib.contextmanager
def _about(option: str) -> Iterator[None]:
    """Name the command-line option a ModelError (worded for /model) is about."""
    try:
        yield
    except ModelError as e:
        raise ModelError(f"{option}: {e}") from None


async def _check_server(registry: ModelRegistry, guild_id: int, limit: int) -> None:
    """Refuse a server the bot has no record of (a mistyped id would register a model nobody sees), and a
    server at its quota."""
    if not await registry.knows_server(guild_id):
        raise ConfigError(
            f"--guild {guild_id}: the bot has no record of this server (it never answered there); check the "
            "id, or use one of the bot's commands there once"
        )
    with _about(f"--guild {guild_id}"):
        await registry.check_room(guild_id, limit)


async def _check_unregistered(registry: ModelRegistry, card: Card, source: Path) -> None:
    """Refuse an adapter id some model already wrote under: texts are stored, cached and deleted by model id,
    so an adapter sharing one (another server's, the bot's own model's, one it served before) would share
    and delete the other's texts."""
    taken = await registry.by_adapter(card.model_id)
    if taken is not None:
        raise ModelError(
            f"{source}: adapter {card.model_id} is already server {taken.guild_id}'s model {taken.name!r}; "
            "each server model needs an adapter of its own (export its run again for another copy)"
        )
    wrote = "SELECT EXISTS (SELECT 1 FROM generations WHERE model_id = ?)"
    if (await registry.db.fetch(wrote, (card.model_id,)))[0][0]:
        raise ModelError(
            f"{source}: texts of another model are stored under adapter {card.model_id}'s id (the bot's "
            "own model, or one it served before); an adapter needs an id of its own (export its run again)"
        )


async def _copy_and_register(
    registry: ModelRegistry,
    config: BotConfig,
    guild_id: int,
    name: str,
    source: Path,
    files: list[Path],
    card: Card,
    base: Card,
) -> ServerModel:
    """Copy the adapter where a trained one lies and register it ready; a refusal leaves no file behind."""
    folder = new_folder(models_root(config), guild_id)
    try:
        # A copy, not a link: the bot owns it from now on (deleted with the model, unaffected by the original).
        await asyncio.to_thread(_copy_files, source, files, folder / CHECKPOINT)
        with _about("--name"):
            return await registry.add(
                guild_id,
                name,
                base.model_id,
                str(folder),
                str(source.resolve()),
                _report(card, source),
                adapter_id=card.model_id,
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _own_files(source: Path) -> list[Path]:
    """The adapter folder's files (relative to it), refusing a symbolic link or a special file inside it:
    the copy holds the adapter's own files, never one a link brings in from elsewhere on the host."""
    if not source.is_dir():
        return []  # read_adapter_card says what it is instead
    root, found = source.resolve(), []  # the folder itself may be a link (say, to the latest export)

    def unreadable(e: OSError) -> None:
        raise CheckpointError(f"{e.filename}: cannot be read ({e.strerror})")

    for folder, dirs, names in os.walk(root, onerror=unreadable):  # never enters a linked folder
        for name in sorted([*dirs, *names]):
            entry = Path(folder, name)
            shown = source / entry.relative_to(root)
            if entry.is_symlink():
                raise CheckpointError(
                    f"{shown}: a symbolic link; an adapter folder must hold its own files "
                    "(replace the link with a copy of the file)"
                )
            if name in names and not entry.is_file():
                raise CheckpointError(f"{shown}: not a regular file; an adapter folder holds only files")
        found += [Path(folder, n).relative_to(root) for n in names]
    return found


def _copy_files(source: Path, files: list[Path], into: Path) -> None:
    """Copy ``files`` (checked by ``_own_files``) from ``source`` into the new folder ``into``."""
    root = source.resolve()
    for rel in files:
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        try:  # O_NOFOLLOW: a file swapped for a link since it was checked is refused, not followed
            with (
                open(os.open(root / rel, os.O_RDONLY | os.O_NOFOLLOW), "rb") as src,
                open(into / rel, "wb") as out,
            ):
                shutil.copyfileobj(src, out)
        except OSError as e:
            raise CheckpointError(f"{source / rel}: could not be copied ({e.strerror or e})") from None


def _report(card: Card, source: Path) -> dict[str, Any]:
    """What /model list shows of it (examples trained on, loss against the bot's model), from its card."""
    metrics = card.metrics
    return {
        "kept": sum(int(t.get("examples", 0)) for t in card.tags.values()),
        "added_from": str(source.resolve()),
        "training": {
            "steps": metrics.get("steps"),
            "val_loss": metrics.get("best_val_loss"),
            "base_val_loss": metrics.get("start_val_loss"),
        },
    }
