"""The Discord bot: ``create_bot(checkpoint, database, **settings)`` builds it unstarted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from linernotes.bot.app import LinernotesBot


def create_bot(checkpoint: Any, database: Any, **settings: Any) -> LinernotesBot:
    """An unstarted bot (see ``bot.app.create_bot``); importing ``bot`` alone loads no Discord or model code."""
    from linernotes.bot.app import create_bot as build

    return build(checkpoint, database, **settings)
