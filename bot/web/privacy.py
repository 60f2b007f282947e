"""Which generations the web may show, and how they are named there.

A generation is public only when all of these hold: it was written by the bot's own model, or by a
server's model whose server's managers opted in (``/model publish``); it holds nobody's own words (no
seed line, no headline: such rows are ``private``); and it has been shown in Discord or was written by
the warm-up. Pages and the API name a generation only by its random public id, never by its row id, and
show nothing of where it was posted (no server, channel, message or user).
"""

from __future__ import annotations

import re
import time

from linernotes.bot.storage import Database

PUBLIC_ID = re.compile(r"[0-9a-f]{24}")  # storage.public_token's form: anything else is no generation

# One SQL condition on a ``generations g`` row: the rules above, in the order they are cheapest to check.
PUBLIC = (
    "g.private = 0 AND g.seed_line IS NULL AND g.public_id IS NOT NULL "
    "AND (g.origin = 'warm' OR EXISTS (SELECT 1 FROM deliveries sd WHERE sd.generation_id = g.id "
    "AND sd.via = 'discord' AND sd.message_id IS NOT NULL)) "
    "AND (NOT EXISTS (SELECT 1 FROM server_models sm WHERE sm.model_id = g.model_id "
    "AND sm.model_id != sm.base_model_id) "
    "OR EXISTS (SELECT 1 FROM server_models sm JOIN published_servers ps ON ps.guild_id = sm.guild_id "
    "WHERE sm.model_id = g.model_id))"
)


def is_public_id(text: str) -> bool:
    """Whether ``text`` has the form of a public id (a cheap check before any lookup)."""
    return PUBLIC_ID.fullmatch(text) is not None


def permalink(base_url: str, public_id: str) -> str:
    """The page of a generation under the site's base URL (or a path, with an empty base)."""
    return f"{base_url}/g/{public_id}"


async def public_id_of(db: Database, generation_id: int) -> str | None:
    """The public id of a generation that may be shown on the web now; None when it may not."""
    rows = await db.fetch(
        f"SELECT g.public_id FROM generations g WHERE g.id = ? AND {PUBLIC}", (generation_id,)
    )
    return rows[0][0] if rows else None


async def set_published(db: Database, guild_id: int, published: bool) -> None:
    """Opt a server's models' texts into the web (``/model publish on``), or out again."""
    if published:
        await db.execute(
            "INSERT INTO published_servers VALUES (?, ?) ON CONFLICT (guild_id) DO NOTHING",
            (guild_id, time.time()),
        )
    else:
        await db.execute("DELETE FROM published_servers WHERE guild_id = ?", (guild_id,))


async def is_published(db: Database, guild_id: int) -> bool:
    """Whether a server opted its models' texts into the web."""
    rows = await db.fetch("SELECT 1 FROM published_servers WHERE guild_id = ?", (guild_id,))
    return bool(rows)
