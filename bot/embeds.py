"""How a generation and the ``/stats`` figures look in Discord."""

from __future__ import annotations

import re
from typing import Any

import discord

from linernotes.bot.admin import Stats
from linernotes.bot.safety import clean
from linernotes.bot.storage import Generation

TITLE_LIMIT = 256
FOOTER_ID = re.compile(r"#(\d+) ")  # how a generation's footer begins: "#12 · model · ..."


def generation_embed(gen: Generation, requested: dict[str, Any], reactions: list[str]) -> discord.Embed:
    """An embed with the tags asked for, the text, and a footer with the generation id."""
    if gen.kind == "review":
        score = float(requested.get("score", gen.tags["score"]))
        title = f"{gen.tags['genre']} · {score:.1f}/10"
        # Red for a pan through amber to green for a rave.
        colour = discord.Colour.from_hsv(min(score, 10.0) / 10 * 0.33, 0.65, 0.85)
    elif gen.kind == "product":
        rating = int(gen.tags["rating"])
        title = stars(rating) + (f" · {gen.tags['headline']}" if gen.tags.get("headline") else "")
        colour = discord.Colour.from_hsv((rating - 1) / 4 * 0.33, 0.65, 0.85)
    elif gen.kind == "lyrics":
        title = gen.tags["part"].replace("-", " ").title()
        if gen.tags.get("artist"):
            title += f" · in the style of {gen.tags['artist']}"
        colour = discord.Colour.blurple()
    else:
        title = " · ".join(str(v) for v in gen.tags.values())
        colour = discord.Colour.light_grey()
    embed = discord.Embed(title=clean(title)[:TITLE_LIMIT], description=clean(gen.text)[:4096], colour=colour)
    embed.set_footer(text=f"#{gen.id} · {gen.model_id} · react {reactions[0]} or {reactions[1]} to rate")
    return embed


def generation_id(embed: discord.Embed) -> int:
    """The generation number in an answer's footer, as ``generation_embed`` writes it."""
    found = FOOTER_ID.match(embed.footer.text or "")
    if found is None:
        raise ValueError(f"not a generation's footer: {embed.footer.text!r}")
    return int(found.group(1))


def stars(rating: int, out_of: int = 5) -> str:
    """A 1-5 rating as filled and empty stars: 4 -> ★★★★☆."""
    return "★" * rating + "☆" * (out_of - rating)


def permalink(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """The jump URL of a message."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def stats_embed(stats: Stats, reactions: list[str]) -> discord.Embed:
    """The ``/stats`` embed: what this server was served and how it rated it; the shared cache."""
    t = stats.totals
    rated = t["up"] + t["down"]
    approval = f" ({t['up'] / rated:.0%} approval)" if rated else ""
    embed = discord.Embed(title="linernotes stats", colour=discord.Colour.blurple())
    embed.add_field(name="Served", value=f"{t['served']} answers from {t['generations']} generations")
    up, down = reactions
    embed.add_field(name="Ratings", value=f"{up} {t['up']} · {down} {t['down']}{approval}")
    embed.add_field(name="Queue", value=f"{stats.queued} jobs")
    lines = [f"`{key}` {n}" for key, n in sorted(stats.depth.items(), key=lambda kv: (-kv[1], kv[0]))[:15]]
    embed.add_field(
        name=f"Cache ({sum(stats.depth.values())} ready, {len(stats.depth)} keys)",
        value="\n".join(lines) or "empty",
        inline=False,
    )
    embed.set_footer(text=stats.model_id)
    return embed
