"""The "🔁 Another" button: a persistent component that survives restarts (matched by custom id)."""

from __future__ import annotations

from typing import Protocol, cast

import discord

from linernotes.bot.errors import report


class ServesAnother(Protocol):
    """What the button needs: something that serves another generation like an earlier one."""

    async def another(self, interaction: discord.Interaction, generation_id: int) -> None:
        """Serve a fresh generation with the tags of ``generation_id``."""


class HasRequests(Protocol):
    """The client the button is clicked in: it carries the request handler (``bot.app`` wires it)."""

    requests: ServesAnother


class AnotherButton(discord.ui.DynamicItem[discord.ui.Button], template=r"ln:another:(?P<gid>[0-9]+)"):
    """Serves a fresh generation with the same tags as generation ``gid``."""

    def __init__(self, gid: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Another",
                emoji="🔁",
                style=discord.ButtonStyle.secondary,
                custom_id=f"ln:another:{gid}",
            )
        )
        self.gid = gid

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match
    ) -> AnotherButton:
        """Rebuild the item from a click on any message, including ones sent before a restart."""
        return cls(int(match["gid"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Serve another one for the same tags."""
        # discord.py rebuilds this item from its custom id alone, so the handler comes with the client.
        client = cast(HasRequests, interaction.client)
        try:
            await client.requests.another(interaction, self.gid)
        except Exception as e:  # handed to the one reporter, which logs the unexpected with its trace
            await report(interaction, e)


def another_view(gid: int) -> discord.ui.View:
    """A view holding the button for generation ``gid``."""
    view = discord.ui.View(timeout=None)
    view.add_item(AnotherButton(gid))
    return view
