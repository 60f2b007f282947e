"""Text that goes to Discord pings nobody, hides nothing, and carries no invites."""

from __future__ import annotations

import re

import discord

from linernotes.model.seedline import strip_invisible

_INVITE = re.compile(
    r"(?:https?://)?(?:www\.)?(?:discord(?:app)?\.(?:gg|com/invite|io|me|li)|dsc\.gg)/[\w-]+", re.IGNORECASE
)


def clean(text: str) -> str:
    """Neutralise mentions (@everyone, <@id>, <#id>), invite links, markdown and invisible characters."""
    text = strip_invisible(text)  # first: the escapes below add zero-width spaces of their own
    text = _INVITE.sub("[invite removed]", text)
    text = discord.utils.escape_markdown(text)  # spoilers, masked links, headers, code: shown literally
    text = discord.utils.escape_mentions(text)  # @everyone -> @\u200beveryone, <@1> -> <@\u200b1>
    return re.sub(r"<(#|@&|@!?)(\d+)>", lambda m: f"<{m.group(1)}\u200b{m.group(2)}>", text)
