"""Sanitising a user's seed line before it reaches the model."""

from __future__ import annotations

import re
import unicodedata

from linernotes.data.format import END, HEADER_OPEN

SEED_LIMIT = 200  # characters
_MARKERS = re.compile(r"<\|\w{1,40}\|>")  # "<|endoftext|>", "<|review|>": whole markers go
_TAG_BLOCK = range(0xE0000, 0xE0080)  # invisible "tag" letters that can smuggle text past a reader
_JOINERS = {"\u034f"}  # combining grapheme joiner: a mark (Mn) that shows nothing
# Not shown: controls, format characters (bidi overrides such as U+202E reorder what follows), line and
# paragraph separators, surrogates and private use. Code points unassigned in this Python's Unicode tables
# (Cn) stay: most are characters newer than the tables (Python 3.11 knows Unicode 14), such as a recent
# emoji in someone's seed line, and they show.
HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def strip_invisible(text: str, replace: str = " ", *, keep: str = "\n") -> str:
    """Every character nobody would see (a ``HIDDEN`` category, the tag block, the grapheme joiner)
    becomes ``replace`` (a space: words stay apart; "" drops it), except those in ``keep`` (newlines are
    text): nothing invisible reaches a prompt, a message or a shown file name. The one filter."""
    return "".join(replace if ch not in keep and _hidden(ch) else ch for ch in text)


def _hidden(ch: str) -> bool:
    return unicodedata.category(ch) in HIDDEN or ord(ch) in _TAG_BLOCK or ch in _JOINERS


def sanitize_seed(seed: str | None, limit: int = SEED_LIMIT) -> str | None:
    """One clean line, no tag syntax or end marker, at most ``limit`` characters cut at a word.

    Returns None when nothing usable is left.
    """
    if not seed:
        return None
    text = unicodedata.normalize("NFC", seed)
    text = text.replace(END, " ")
    text = _MARKERS.sub(" ", text)
    text = text.replace(HEADER_OPEN, " ").replace("|>", " ")
    text = strip_invisible(text)
    text = " ".join(text.split())
    if len(text) > limit:
        cut = text[: limit + 1]
        text = cut[: cut.rfind(" ")] if " " in cut else cut[:limit]
    return text.strip() or None
