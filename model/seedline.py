"""Sanitising a user's seed line before it reaches the model."""

from __future__ import annotations

import re
import unicodedata

from data.format import END, HEADER_OPEN

SEED_LIMIT = 200  # characters
_MARKERS = re.compile(r"<\|\w{1,40}\|>")  # "<|endoftext|>", "<|review|>": whole markers go
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


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
    text = _CONTROL.sub(" ", text)
    text = " ".join(text.split())
    if len(text) > limit:
        cut = text[: limit + 1]
        text = cut[: cut.rfind(" ")] if " " in cut else cut[:limit]
    return text.strip() or None
