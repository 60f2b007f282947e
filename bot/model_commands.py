"""``/model train|use|list|delete|cancel``: a server's own models, for its managers only.

Each command gets the ``ServerModels`` service and nothing else; errors go to the tree's one handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from linernotes.bot.models import NAME_MAX, Notifier, Notify, ServerModels
from linernotes.bot.registry import ServerModel
from linernotes.common.errors import LinernotesError

log = logging.getLogger(__name__)
Check = Callable[[Any], Any]  # the permission check every /model command carries
Names = Callable[[discord.Interaction, str], Awaitable[list[app_commands.Choice[str]]]]
STATUS = {
    "queued": "⏳ queued",
    "preparing": "📥 reading its upload",
    "training": "🏋️ training",
    "sampling": "✍️ writing its first lines",
    "ready": "✅ ready",
    "failed": "❌ failed",
}


def model_group(models: ServerModels, permission: str) -> app_commands.Group:
    """The ``/model`` group, visible by default to members with ``permission`` and checked on use."""
    group = app_commands.Group(
        name="model",
        description="This server's own lyrics models",
        guild_only=True,
        default_permissions=discord.Permissions(**{permission: True}),
    )
    check = app_commands.checks.has_permissions(**{permission: True})
    names = _names(models, permission)
    _add_train(group, models, check)  # in this order: the order members see them in
    _add_use_and_list(group, models, check, names)
    _add_delete_and_cancel(group, models, check, names)
    _add_publish(group, models, check)
    return group


def _names(models: ServerModels, permission: str) -> Names:
    """Autocomplete of the server's model names, for those who may use the group (no one else)."""

    async def names(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        # Discord runs autocomplete for anyone who can see the command (a server may show /model to
        # everyone), and checks do not apply to it: names are for those who may use the group.
        if not getattr(interaction.permissions, permission, False):
            return []
        found = await models.listing(interaction.guild_id or 0)
        options = [m.name for m, _, _ in found if current.casefold() in m.name.casefold()]
        return [app_commands.Choice(name=n, value=n) for n in options[:25]]

    return names


def channel_notifier(client: discord.Client) -> Notifier:
    """How the trainer tells a member whose /model train another process received: a message in their
    channel, then edits of it (it holds no interaction of theirs)."""

    def in_channel(channel_id: int) -> Notify:
        sent: list[discord.Message] = []

        async def notify(text: str) -> None:
            try:
                if sent:
                    sent[0] = await sent[0].edit(content=text)
                else:
                    sent.append(await client.get_partial_messageable(channel_id).send(text))
            except discord.HTTPException as e:  # e.g. no permission to post there: /model list still tells
                log.info("could not tell channel %s about its server model: %s", channel_id, e)

        return notify

    return in_channel


def _add_train(group: app_commands.Group, models: ServerModels, check: Check) -> None:
    """``/model train``: the job is claimed before any await, then the upload is received."""

    @group.command(
        name="train", description="Train a model on a lyrics file (.txt or .json) in the background"
    )
    @app_commands.describe(
        name="what to call the model", file="lyrics: [Verse]/[Chorus] text, songs, or Genius JSON"
    )
    @check
    async def train(
        interaction: discord.Interaction, name: app_commands.Range[str, 1, NAME_MAX], file: discord.Attachment
    ) -> None:
        async def notify(text: str) -> None:
            try:
                await interaction.edit_original_response(content=text)
            except discord.HTTPException as e:  # e.g. the interaction's 15 minutes are over
                log.info("could not update the /model train message: %s", e)

        try:  # before any await: a /model cancel or delete sent right after this finds the job
            job = models.claim(
                interaction.guild_id or 0, name, file.filename, file.size, notify, interaction.channel_id
            )
        except LinernotesError:
            await interaction.response.defer(thinking=True)  # answered as every /model train is: an edit
            raise
        await models.receive(job, file.read, lambda: interaction.response.defer(thinking=True))


def _add_use_and_list(group: app_commands.Group, models: ServerModels, check: Check, names: Names) -> None:
    """``/model use`` and ``/model list``."""

    @group.command(name="use", description="Choose which model answers this server (default: the bot's own)")
    @app_commands.describe(name="one of this server's models, or 'default'")
    @app_commands.autocomplete(name=names)
    @check
    async def use(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(await models.use(interaction.guild_id or 0, name))

    @group.command(name="list", description="This server's models")
    @check
    async def listing(interaction: discord.Interaction) -> None:
        found = await models.listing(interaction.guild_id or 0)
        lines = [_line(m, active, unusable) for m, active, unusable in found]
        text = "\n".join(lines) if lines else "This server has no models yet: /model train makes one."
        if not any(active for _, active, _ in found):
            text += "\nThis server uses the bot's own model."
        await interaction.response.send_message(text, ephemeral=True)


def _add_delete_and_cancel(
    group: app_commands.Group, models: ServerModels, check: Check, names: Names
) -> None:
    """``/model delete`` and ``/model cancel``."""

    @group.command(name="delete", description="Delete a model with its upload and everything it wrote")
    @app_commands.autocomplete(name=names)
    @check
    async def delete(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(await models.delete(interaction.guild_id or 0, name))

    @group.command(name="cancel", description="Stop this server's training job")
    @check
    async def cancel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(await models.cancel(interaction.guild_id or 0))


def _add_publish(group: app_commands.Group, models: ServerModels, check: Check) -> None:
    """``/model publish on|off``: whether this server's models' texts may be shown on the bot's website."""

    @group.command(
        name="publish", description="Show this server's models' texts on the bot's website, or not"
    )
    @app_commands.describe(
        choice="on: public like the bot's own texts; off (the default): kept to this server"
    )
    @app_commands.choices(choice=[app_commands.Choice(name=c, value=c) for c in ("on", "off")])
    @check
    async def publish(interaction: discord.Interaction, choice: str) -> None:
        await interaction.response.send_message(
            await models.publish(interaction.guild_id or 0, choice == "on")
        )


def _line(model: ServerModel, active: bool, unusable: str | None) -> str:
    """One model in /model list."""
    line = f"**{model.name}** — {STATUS.get(model.status, model.status)}"
    if "kept" in model.report:  # known once its upload is read
        line += f", {model.report['kept']} sections"
    training = model.report.get("training") or {}
    if training.get("val_loss") is not None and training.get("base_val_loss") is not None:
        line += f", validation loss {training['val_loss']:.2f} (bot's model {training['base_val_loss']:.2f})"
    if model.status == "failed" and model.error:
        line += f": {model.error}"
    if model.status == "ready":
        line += f", id `{model.model_id}`"
    if unusable:
        line += f" ({unusable})"
    return line + (" ← in use" if active else "")
