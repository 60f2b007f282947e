"""Sanitising a user's seed line before it reaches the model."""

from __future__ import annotations

import re
import unicodedata

from linernotes.data.format import END, HEADER_OPEN

SEED_LIMIT = 200  # characters
_MARKERS = re.compile(r"<\|\w{1,40}\|>")  # "<|endoftext|>", "<|review|>": whole markers go
_TAG_BLOCK = range(0xE0000, 0xE0080)  # invisible "tag" letters that can smuggle text past a reader
_JOINERS = {"\u034f"}  # combining grapheme joiner: a mark (Mn) that shows nothing


def strip_invisible(text: str) -> str:
    """Every format or control character (Unicode Cf, Cc except newline), the tag block and the
    grapheme joiner become a space: nothing invisible reaches a prompt or a message. The one filter."""
    return "".join(
        " "
        if ch != "\n"
        and (unicodedata.category(ch) in ("Cf", "Cc") or ord(ch) in _TAG_BLOCK or ch in _JOINERS)
        else ch
        for ch in text
    )


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
