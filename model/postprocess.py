"""Turning decoded text into a finished piece: clean stops, whole sentences or lines, Discord's limits."""

from __future__ import annotations

import re

from linernotes.data.format import HEADER_OPEN, unescape_body

EMBED_LIMIT = 4096  # characters in a Discord embed description
MIN_CHARS = {"review": 120, "product": 60, "lyrics": 30}
_SENTENCE_END = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s|$)""")


def finish(text: str, kind: str, stop: str, limit: int = EMBED_LIMIT) -> str:
    """Cut at any header start, unescape, end at a whole sentence (prose) or line (lyrics), fit ``limit``.

    ``stop`` is why decoding ended: after "length" the last sentence or line may be unfinished and is
    dropped ("" when nothing whole is left); after "end" lyrics are complete, and prose loses any
    fragment after its last whole sentence.
    """
    if HEADER_OPEN in text:
        text = text[: text.index(HEADER_OPEN)]
    text = unescape_body(text)
    text = "\n".join(line.rstrip() for line in text.strip().split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    if stop != "end":
        text = whole_lines(text) if kind == "lyrics" else whole_sentences(text)
    elif kind != "lyrics":
        # A small model may close a review mid-sentence: drop the fragment after its last whole sentence
        # (a text with no sentence end at all is kept as the model ended it).
        text = whole_sentences(text) or text
    return fit(text, kind, limit)


def whole_sentences(text: str) -> str:
    """Text up to and including its last complete sentence ("" if it has none)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""


def whole_lines(text: str) -> str:
    """Text without its last (possibly unfinished) line."""
    if "\n" not in text:
        return ""
    return text[: text.rindex("\n")].rstrip()


def fit(text: str, kind: str, limit: int) -> str:
    """Shorten to ``limit`` characters at a sentence or line end, else a word boundary, never mid-word."""
    if len(text) <= limit:
        return text
    room = text[: limit - 1]
    cut = whole_lines(room) if kind == "lyrics" else whole_sentences(room)
    if len(cut) >= limit // 2:
        return cut
    space = room.rstrip().rfind(" ")
    return (room[:space] if space > 0 else room).rstrip() + "…"


def acceptable(text: str, kind: str, min_chars: int | None = None) -> bool:
    """Long enough to serve."""
    return len(text) >= (MIN_CHARS.get(kind, 30) if min_chars is None else min_chars)
