"""Slash commands, built from the checkpoint card: a model that knows no lyrics has no ``/lyrics``.

Choices come from the card (a picker when there are at most 25 values, autocomplete otherwise), so
nothing here names a genre or a part. Each command gets only the service it calls: the generation
commands the ``RequestHandler``, the information and admin commands the ``Admin``.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from linernotes.bot.admin import Admin
from linernotes.bot.embeds import permalink, stats_embed
from linernotes.bot.model_commands import model_group
from linernotes.bot.models import ServerModels
from linernotes.bot.serve import RequestHandler
from linernotes.bot.storage import Scope
from linernotes.model.card import Card
from linernotes.model.seedline import sanitize_seed

log = logging.getLogger(__name__)
MAX_CHOICES = 25
SEED_MAX = 200
HEADLINE_MAX = 100  # a product headline is a title, not a review


def _values_option(func, name: str, values: list[str]):
    """Offer ``values`` for option ``name``: fixed choices when few, else autocomplete over them."""
    if len(values) <= MAX_CHOICES:
        return app_commands.choices(**{name: [app_commands.Choice(name=v[:100], value=v) for v in values]})(
            func
        )

    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        folded = current.casefold()
        starts = [v for v in values if v.casefold().startswith(folded)]
        inside = [v for v in values if folded in v.casefold() and v not in starts]
        return [app_commands.Choice(name=v[:100], value=v) for v in (starts + inside)[:MAX_CHOICES]]

    return app_commands.autocomplete(**{name: complete})(func)


def review_command(requests: RequestHandler, card: Card) -> app_commands.Command:
    """``/review genre score``."""

    async def review(
        interaction: discord.Interaction, genre: str, score: app_commands.Range[float, 0.0, 10.0]
    ) -> None:
        await requests.request(interaction, "review", {"genre": genre, "score": score})

    review = app_commands.describe(genre="the album's genre", score="the score from 0.0 to 10.0")(review)
    review = _values_option(review, "genre", card.values("review", "genre"))
    return app_commands.Command(name="review", description="Write an album review", callback=review)


def product_command(requests: RequestHandler) -> app_commands.Command:
    """``/product rating [headline]``."""

    async def product(
        interaction: discord.Interaction,
        rating: app_commands.Range[int, 1, 5],
        headline: app_commands.Range[str, 1, HEADLINE_MAX] | None = None,
    ) -> None:
        # The headline goes into the prompt's header: it gets the seed line's cleaning.
        tags = {"rating": rating, "headline": sanitize_seed(headline, HEADLINE_MAX)}
        await requests.request(interaction, "product", tags)

    product = app_commands.describe(
        rating="stars from 1 to 5", headline="the review's title (written for you, never cached)"
    )(product)
    return app_commands.Command(name="product", description="Write a product review", callback=product)


def lyrics_command(requests: RequestHandler, card: Card) -> app_commands.Command:
    """``/lyrics part [seed] [artist]``."""

    async def lyrics(
        interaction: discord.Interaction,
        part: str,
        seed: app_commands.Range[str, 1, SEED_MAX] | None = None,
        artist: str | None = None,
    ) -> None:
        tags = {"part": part, "artist": artist}
        await requests.request(interaction, "lyrics", tags, seed_line=seed)

    lyrics = app_commands.describe(
        part="which part of a song",
        seed="a first line to continue from",
        artist="write in the style of this artist",
    )(lyrics)
    lyrics = _values_option(lyrics, "part", card.values("lyrics", "part"))
    artists = card.values("lyrics", "artist")
    if artists:
        # Autocomplete even for a few artists: the option is optional and a picker would force one.
        async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            folded = current.casefold()
            return [app_commands.Choice(name=a[:100], value=a) for a in artists if folded in a.casefold()][
                :MAX_CHOICES
            ]

        lyrics = app_commands.autocomplete(artist=complete)(lyrics)
    return app_commands.Command(name="lyrics", description="Write song lyrics", callback=lyrics)


def scope_of(interaction: discord.Interaction) -> Scope:
    """The server an interaction comes from (outside servers: its channel)."""
    return Scope(interaction.guild_id, interaction.channel_id or 0)


def show_command(admin: Admin) -> app_commands.Command:
    """``/show id``: the permalink of an earlier generation, if it was posted in this server."""

    async def show(interaction: discord.Interaction, id: app_commands.Range[int, 1]) -> None:
        # One answer whether #id does not exist or was posted elsewhere: other servers stay invisible.
        places = await admin.places(id, scope_of(interaction))
        if not places:
            text = f"No generation #{id} was posted in this server."
        else:
            first = places[0]
            text = f"#{id}: {permalink(first['guild_id'], first['channel_id'], first['message_id'])}"
            if len(places) > 1:
                text += f" (posted {len(places)} times)"
            link = await admin.web_link(id)
            if link:
                text += f"\nOn the web: {link}"
        await interaction.response.send_message(text, ephemeral=True)

    show = app_commands.describe(id="the number in the footer of a generation")(show)
    return app_commands.Command(name="show", description="Link to an earlier generation", callback=show)


def stats_command(admin: Admin, reactions: list[str]) -> app_commands.Command:
    """``/stats``: this server's answers and ratings, the shared cache's depth per key, the queue."""

    async def stats(interaction: discord.Interaction) -> None:
        figures = await admin.stats(scope_of(interaction))
        await interaction.response.send_message(embed=stats_embed(figures, reactions), ephemeral=True)

    return app_commands.Command(
        name="stats", description="Cache depth; generations served and rated in this server", callback=stats
    )


def admin_commands(admin: Admin, permission: str) -> list[app_commands.Command]:
    """``/warm`` and ``/reload``, visible by default only to members with ``permission`` in the server.

    ``/warm`` is for those members. ``/reload`` swaps the model for every server, so the bot itself
    decides: only the application's owners and configured operators (``Admin.reload``).
    """
    perm = {permission: True}

    async def warm(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        stored = await admin.warm()
        await interaction.followup.send(f"Warm-up stored {stored} new generations.", ephemeral=True)

    async def reload(interaction: discord.Interaction, checkpoint: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        card = await admin.reload(interaction.user, checkpoint)
        await interaction.followup.send(f"Now serving {card.model_id}.", ephemeral=True)

    reload = app_commands.describe(
        checkpoint="a checkpoint in the bot's checkpoint directory (default: the current one)"
    )(reload)
    warm = app_commands.checks.has_permissions(**perm)(warm)
    return [
        app_commands.Command(
            name=name, description=desc, callback=app_commands.default_permissions(**perm)(func)
        )
        for name, func, desc in (
            ("warm", warm, "Top up the cache now"),
            ("reload", reload, "Swap in a new checkpoint without restarting (the bot's operators only)"),
        )
    ]


def build(
    card: Card,
    requests: RequestHandler,
    admin: Admin,
    permission: str,
    reactions: list[str],
    models: ServerModels | None = None,
) -> list[app_commands.Command | app_commands.Group]:
    """All commands for a model with this card; ``permission`` shows /warm, /reload and /model in a
    server; ``/model`` exists when server models are on."""
    commands = []
    if "review" in card.tags and card.values("review", "genre"):
        commands.append(review_command(requests, card))
    if "product" in card.tags and card.values("product", "rating"):
        commands.append(product_command(requests))
    if "lyrics" in card.tags and card.values("lyrics", "part"):
        commands.append(lyrics_command(requests, card))
    return [
        *commands,
        show_command(admin),
        stats_command(admin, reactions),
        *admin_commands(admin, permission),
        *([model_group(models, permission)] if models else []),
    ]
