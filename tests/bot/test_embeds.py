"""An answer's embed names its generation, and the number reads back from the footer."""

from __future__ import annotations

import discord
import pytest

from linernotes.bot.embeds import generation_embed, generation_id
from linernotes.bot.storage import Generation


def test_the_footers_generation_number_reads_back():
    gen = Generation(1234, "lyrics", "lyrics|chorus|", {"part": "chorus"}, None, "la la", "run-int8-ab12")
    embed = generation_embed(gen, {"part": "chorus"}, ["👍", "👎"])
    assert embed.footer.text.startswith("#1234 · run-int8-ab12")
    assert generation_id(embed) == 1234


@pytest.mark.parametrize("footer", ["run-int8-ab12", "#12a · model", ""])
def test_a_footer_that_names_no_generation_is_refused(footer):
    embed = discord.Embed(title="linernotes stats").set_footer(text=footer)
    with pytest.raises(ValueError, match="not a generation's footer"):
        generation_id(embed)
