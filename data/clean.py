"""Text cleaning shared by every reader: Unicode, HTML remnants, whitespace, and duplicate keys."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

_BR = re.compile(r"<br\s*/?>|</p>\s*<p>", re.IGNORECASE)
_TAG = re.compile(r"</?(?:p|i|em|b|strong|span|div)(?:\s[^>]*)?>", re.IGNORECASE)
# Control and zero-width characters; newline and tab are handled separately.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200d\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# "the voyage.Fortunately": a sentence end glued to the next sentence (a scraping quirk).
_RUN_ON = re.compile(r"(?<=[a-z])([.!?])(?=[A-Z][a-z])")


def clean_text(text: str, *, lowercase: bool = False, fix_run_on: bool = False) -> str:
    """Normalise Unicode (NFC), decode HTML entities and line breaks, and tidy whitespace.

    Line structure is kept (lyrics depend on it): lines are right-stripped and at most one blank
    line separates paragraphs.
    """
    text = html.unescape(_BR.sub("\n", text))
    text = _TAG.sub("", text)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _INVISIBLE.sub("", text)
    text = _SPACES.sub(" ", text)
    if fix_run_on:
        text = _RUN_ON.sub(r"\1 ", text)
    lines = [line.strip() for line in text.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return text.lower() if lowercase else text


def clean_value(value: str) -> str:
    """Clean a one-line metadata value (genre, artist, headline)."""
    return " ".join(clean_text(value).split())


def dedupe_key(text: str) -> str:
    """A key equal for texts that differ only in case, punctuation, or spacing (near duplicates)."""
    folded = unicodedata.normalize("NFKD", text).casefold()
    core = "".join(ch for ch in folded if ch.isalnum())
    return hashlib.blake2b(core.encode(), digest_size=12).hexdigest()


def exact_key(text: str) -> str:
    """A key equal only for byte-identical texts."""
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def has_undecodable(text: str) -> bool:
    """True if text read with ``errors="surrogateescape"`` held bytes that were not UTF-8."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)
