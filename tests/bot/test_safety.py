"""Nothing invisible gets through: format and control characters leave seeds, prompts and embeds."""

from __future__ import annotations

import unicodedata

import pytest

from linernotes.bot.safety import clean
from linernotes.model.seedline import sanitize_seed, strip_invisible
from tests.bot.helpers import footer_id

pytestmark = pytest.mark.simcord(settle_timeout=60)

# RLI, LRI, PDI, Arabic letter mark, Mongolian vowel separator, soft hyphen, combining grapheme joiner,
# word joiner, a BOM, tag letters spelling "hi", a cancel tag, a tab and a vertical tab.
SNEAKY = "\u2067\u2066\u2069\u061c\u180e\u00ad\u034f\u2060\ufeff\U000e0068\U000e0069\U000e007f\t\x0b"


def invisible(text: str) -> list[str]:
    """The characters of ``text`` nobody would see."""
    return [
        c
        for c in text
        if c != "\n"
        and (unicodedata.category(c) in ("Cf", "Cc") or 0xE0000 <= ord(c) <= 0xE007F or c == "\u034f")
    ]


def test_the_filter_leaves_nothing_invisible():
    assert invisible(strip_invisible(f"a{SNEAKY}b\nc")) == []
    assert strip_invisible("two\nlines") == "two\nlines"  # newlines are text
    assert sanitize_seed(f"mid{SNEAKY}night  train") == "mid night train"
    assert invisible(clean(f"shown{SNEAKY}text")) == []
    assert clean("@everyone") == "@\u200beveryone"  # the filter runs first: the mention escape survives


async def test_a_seed_full_of_invisible_characters(simcord_env, server):
    _, channel, alice, _ = server
    r = await alice.slash(channel, "lyrics", part="chorus", seed=f"neon{SNEAKY} river")
    gen = await simcord_env.bot.db.get(footer_id(r.response))
    assert gen.seed_line == "neon river"  # what reached the prompt
    assert invisible(r.response.embeds[0].description) == []  # what reached Discord
