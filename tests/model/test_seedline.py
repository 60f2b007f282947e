"""One filter for what nobody would see: spaced out of seeds, prompts and messages (words stay apart),
dropped from the file names a member is shown."""

from __future__ import annotations

import pytest

from linernotes.model.seedline import strip_invisible

# A bidi override and a zero-width space (Cf), a bell (Cc), the line and paragraph separators (Zl, Zp),
# a lone surrogate (Cs), private use (Co), a tag letter, the grapheme joiner.
HIDDEN = [
    "\u202e",
    "\u200b",
    "\x07",
    "\u2028",
    "\u2029",
    "\ud800",
    "\ue000",
    "\U000e0041",
    "\u034f",
]


@pytest.mark.parametrize("ch", HIDDEN)
def test_every_kind_of_hidden_character_goes(ch):
    assert strip_invisible(f"a{ch}b") == "a b"
    assert strip_invisible(f"a{ch}b", "") == "ab"


def test_newlines_are_text_unless_told_otherwise():
    assert strip_invisible("two\nlines") == "two\nlines"
    assert strip_invisible("two\nlines", "", keep="") == "twolines"


def test_what_shows_is_left_alone():
    text = "Déjà vu — naïve café 🎸, e\u0301, 東京, [Chorus]"
    assert strip_invisible(text) == strip_invisible(text, "", keep="") == text


def test_characters_newer_than_the_unicode_tables_stay():
    shaking_face = "\U0001fae8"  # an emoji of Unicode 15: unassigned (Cn) in Python 3.11's tables
    assert strip_invisible(f"so {shaking_face} cold") == f"so {shaking_face} cold"
