"""The one place errors become what a user reads: a short ephemeral line; the trace goes to the log."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from linernotes.bot.storage import StorageError
from linernotes.common.errors import LinernotesError

log = logging.getLogger(__name__)
OOPS = "Something went wrong on our side; it has been logged. Please try again."
STORAGE = "The bot can't reach its storage right now; the operator has been told. Please try again later."


def message_for(error: BaseException) -> str:
    """The text a user sees for ``error``."""
    original = getattr(error, "original", None) or error
    if isinstance(original, StorageError):
        return STORAGE  # its message names a file on the host: for the operator's log only
    if isinstance(original, LinernotesError):
        return str(original)
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f}s."
    if isinstance(error, app_commands.MissingPermissions):
        return "Only server managers can use this command."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return OOPS


async def report(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user what went wrong, whatever state the interaction is in."""
    text = message_for(error)
    if text in (OOPS, STORAGE):
        log.error("error in %s", getattr(interaction.command, "name", "a component"), exc_info=error)
    else:
        log.info("user error in %s: %s", getattr(interaction.command, "name", "a component"), text)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
        elif interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
            await interaction.edit_original_response(content=f"⚠️ {text}", embed=None, view=None)
        else:
            await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user about an error", exc_info=True)
