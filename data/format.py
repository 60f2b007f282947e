"""The tag format: how a record's metadata becomes the header a model is trained on and prompted with.

This module is the only place that knows the layout. Data preparation renders with it, training
tokenizes what it renders, generation prompts with it, and the bot parses requests through it.

Layout of one example (``FORMAT_VERSION`` 1)::

    <|review|> genre: Metal | score: 7.5
    The body text, any number of lines.<|endoftext|>

- The first line is the header: ``<|kind|>`` then `` key: value`` fields joined by `` |``, in the
  kind's canonical order; optional tags that are unset are left out. A header with no fields
  (``<|review|>``) is the *unconditioned* form of its kind.
- Values are escaped so a header stays one line and can never contain ``<|``: ``\\`` -> ``\\\\``,
  ``|`` -> ``\\|``, newline -> ``\\n``, carriage return -> ``\\r``.
- In the body only ``<|`` is special (it starts a header or the end marker). It is escaped
  reversibly by adding one backslash: ``<|`` -> ``<\\|``, ``<\\|`` -> ``<\\\\|``, and so on.
- ``<|endoftext|>`` (GPT-2's end-of-text token) ends every example. Tokenizers add neither a start
  nor an end marker themselves, so both are explicit.

Renderings of the header (``RENDERINGS``; a checkpoint's card records the one it was trained with, so
generation, evaluation and the bot prompt it the same way; cards without one mean ``tags``):

- ``tags``: the control codes above, which a model must learn from its training examples;
- ``prose``: a sentence a pretrained base can already read, after the same ``<|kind|>`` marker:
  ``<|review|> A review of a Metal album, scored 7.5 out of 10.``;
- ``words``: ``prose`` with the score or rating also said in words: ``... scored 7.5 out of 10 (very good).``

In prose, values are escaped as in tags, and ``"`` as ``\\"`` (titles and headlines are quoted);
parsing a prose header re-renders what it read and must give back the same line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from linernotes.common.errors import FormatError

FORMAT_VERSION = 1
RENDERINGS = ("tags", "prose", "words")
END = "<|endoftext|>"
HEADER_OPEN = "<|"  # every header and the end marker start with this; generated text never may

PARTS = (
    "intro",
    "verse",
    "pre-chorus",
    "chorus",
    "post-chorus",
    "bridge",
    "hook",
    "outro",
    "refrain",
    "song",  # a whole song, from files without section headers
)


@dataclass(frozen=True)
class TagSpec:
    """One tag of a kind: its name, value type, whether it is required, and its allowed values."""

    name: str
    type: type
    required: bool = True
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()


KINDS: dict[str, tuple[TagSpec, ...]] = {
    "review": (TagSpec("genre", str), TagSpec("score", float, lo=0.0, hi=10.0)),
    "product": (TagSpec("rating", int, lo=1, hi=5), TagSpec("headline", str, required=False)),
    "lyrics": (
        TagSpec("part", str, choices=PARTS),
        TagSpec("artist", str, required=False),
        TagSpec("title", str, required=False),
    ),
}


@dataclass(frozen=True)
class Record:
    """One example: its kind, its tags in canonical order (empty = unconditioned), and its body."""

    kind: str
    tags: Mapping[str, Any]
    text: str


def make_record(kind: str, tags: Mapping[str, Any], text: str) -> Record:
    """Build a record with validated, canonical tags."""
    return Record(kind, normalize_tags(kind, tags), text)


def check_kind(kind: str) -> tuple[TagSpec, ...]:
    """Return the tag specs of ``kind``, or raise naming the kinds that exist."""
    try:
        return KINDS[kind]
    except KeyError:
        raise FormatError(f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)}") from None


def normalize_part(label: str) -> str:
    """Map a section label ("Verse 2", "PRE-CHORUS", "Pre Chorus", "Chorus - Variation") to a part.

    A label names a part when it starts with one; numbers and qualifiers after it are ignored.
    """
    m = re.match(
        r"(pre|post)?[\s_-]*(intro|verse|chorus|bridge|hook|outro|refrain|song)\b", label.strip().lower()
    )
    part = (f"{m.group(1)}-{m.group(2)}" if m.group(1) else m.group(2)) if m else None
    if part not in PARTS:
        raise FormatError(f"part {label!r} is not one of: {', '.join(PARTS)}")
    return part


def normalize_tags(kind: str, tags: Mapping[str, Any]) -> dict[str, Any]:
    """Validate tags for ``kind`` and return them converted, in canonical order, unset ones dropped.

    Empty ``tags`` is the unconditioned form and is allowed; otherwise every required tag must be set.
    """
    specs = check_kind(kind)
    known = {s.name for s in specs}
    unknown = [k for k in tags if k not in known]
    if unknown:
        raise FormatError(f"{kind}: unknown tag {unknown[0]!r}; {kind} tags are: {', '.join(sorted(known))}")
    if not any(v is not None for v in tags.values()):
        return {}
    out: dict[str, Any] = {}
    for spec in specs:
        value = tags.get(spec.name)
        if value is None:
            if spec.required:
                raise FormatError(f"{kind}: tag {spec.name!r} is required")
            continue
        out[spec.name] = convert_value(spec, value, f"{kind}: tag {spec.name!r}")
    return out


def convert_value(spec: TagSpec, value: Any, where: str) -> Any:
    """``value`` as ``spec``'s type (a part normalized, a score to one decimal), or a ``FormatError`` that
    names it as ``where`` says (``"review: tag 'score'"``; a web parameter is just ``"score"``)."""
    if spec.type is str:
        if not isinstance(value, str) or not value.strip():
            raise FormatError(f"{where} must be non-empty text, got {value!r}")
        return normalize_part(value) if spec.choices == PARTS else value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"{where} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not (spec.lo <= number <= spec.hi):  # type: ignore[operator]
        raise FormatError(f"{where} must be between {spec.lo:g} and {spec.hi:g}, got {value!r}")
    if spec.type is int:
        if number != int(number):
            raise FormatError(f"{where} must be a whole number, got {value!r}")
        return int(number)
    return round(number, 1)  # scores carry one decimal


def _format_value(value: Any, quote: bool = False) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\r", "\\r")
    return text.replace('"', '\\"') if quote else text


_UNESCAPE = {"\\": "\\", "|": "|", "n": "\n", "r": "\r", '"': '"'}


def check_rendering(rendering: str) -> str:
    """Return ``rendering``, or raise naming the renderings that exist."""
    if rendering not in RENDERINGS:
        raise FormatError(f"unknown header rendering {rendering!r}; renderings are: {', '.join(RENDERINGS)}")
    return rendering


def header(kind: str, tags: Mapping[str, Any], rendering: str = "tags") -> str:
    """The header line (with its newline) for already-normalized tags, in ``rendering``."""
    check_kind(kind)
    if check_rendering(rendering) != "tags":
        return f"<|{kind}|> {_PROSE[kind](tags, rendering == 'words')}\n"
    fields = " |".join(f" {k}: {_format_value(v)}" for k, v in tags.items())
    return f"<|{kind}|>{fields}\n"


def prompt(kind: str, *, rendering: str = "tags", **tags: Any) -> str:
    """The exact text generation starts from: the header for these tags (none = unconditioned)."""
    return header(kind, normalize_tags(kind, tags), rendering)


# Words for a score or rating, for the ``words`` rendering: the bands a reader of reviews would use.
SCORE_WORDS = ((3.0, "terrible"), (5.0, "poor"), (6.5, "mediocre"), (7.5, "decent"), (8.5, "very good"))
RATING_WORDS = {1: "terrible", 2: "poor", 3: "average", 4: "good", 5: "excellent"}
PART_PHRASES = {"verse": "A verse", "song": "The full lyrics"}  # the rest: "The <part>"


def score_words(score: float) -> str:
    """A review score (0-10) in words."""
    return next((word for below, word in SCORE_WORDS if score < below), "outstanding")


def _review_prose(tags: Mapping[str, Any], words: bool) -> str:
    if not tags:
        return "A review of an album."
    genre = _format_value(tags["genre"], quote=True)
    article = "an" if genre[:1] in "AEIOUaeiou" else "a"
    said = f" ({score_words(tags['score'])})" if words else ""
    return f"A review of {article} {genre} album, scored {tags['score']:.1f} out of 10{said}."


def _product_prose(tags: Mapping[str, Any], words: bool) -> str:
    if not tags:
        return "A product review."
    said = f" ({RATING_WORDS[tags['rating']]})" if words else ""
    headline = tags.get("headline")
    titled = f', headlined "{_format_value(headline, quote=True)}"' if headline is not None else ""
    return f"A product review, rated {tags['rating']} out of 5 stars{said}{titled}."


def _lyrics_prose(tags: Mapping[str, Any], words: bool) -> str:
    if not tags:
        return "Lyrics from a song."
    part = PART_PHRASES.get(tags["part"], f"The {tags['part']}")
    artist = f" by {_format_value(tags['artist'], quote=True)}" if "artist" in tags else ""
    title = f', titled "{_format_value(tags["title"], quote=True)}"' if "title" in tags else ""
    return f"{part} of a song{artist}{title}."


MIRRORED = {"review": "score", "product": "rating"}  # the tag a contrasting header mirrors, per kind
# The tag a contrasting header swaps for another known value, per kind: a review's genre, a song's part (a
# chorus pushed away from a verse; lyrics have no score to mirror).
SWAPPED = {"review": "genre", "lyrics": "part"}


def contrast_tags(
    kind: str,
    tags: Mapping[str, Any],
    score_range: tuple[float, float],
    known: Sequence[str] = (),
    pick: int = 0,
    swap: str | None = None,
) -> dict[str, Any] | None:
    """The tags a request is contrasted with: its own, the score mirrored within ``score_range`` (a 2.0 of
    1.0-9.8 against an 8.8) or the rating about 3 stars, and a review's genre or a song's part swapped for
    another of ``known`` (the ``pick``-th, wrapping; the generator passes the request's seed), so the contrast
    carries the genre as well as the score; None when nothing differs (no tags, a middle score and no other
    genre known, a song with no part or no other part known). ``swap`` names another tag to swap instead
    (training/pairs.py swaps a song's artist too)."""
    out = dict(tags)
    tag = MIRRORED.get(kind)
    if tag in tags:
        lo, hi = score_range if kind == "review" else (1, 5)
        out[tag] = round(min(hi, max(lo, lo + hi - tags[tag])), 1)
    swap = swap or SWAPPED.get(kind)
    others = sorted({str(v) for v in known} - {str(tags[swap])}) if swap in tags else []
    if others:
        out[swap] = others[pick % len(others)]
    return out if out != dict(tags) else None


_PROSE = {"review": _review_prose, "product": _product_prose, "lyrics": _lyrics_prose}
# Each kind's prose, read back. An unquoted value is greedy or lazy against fixed text anchored at the line's
# end, and a quoted one cannot hold an unescaped quote, so a value may contain any of the fixed words; what
# was read is re-rendered and must give the same line (``_parse_prose``).


def _quoted(name: str) -> str:
    return rf'"(?P<{name}>(?:[^"\\]|\\.)*)"'


_SAID = r"(?: \([a-z ]+\))?"
_PROSE_PATTERNS = {
    "review": re.compile(
        rf"A review of an? (?P<genre>.+) album, scored (?P<score>\d+\.\d) out of 10{_SAID}\."
    ),
    "product": re.compile(
        rf"A product review, rated (?P<rating>[1-5]) out of 5 stars{_SAID}(?:, headlined {_quoted('headline')})?\."
    ),
    "lyrics": re.compile(
        rf"(?P<part>A verse|The full lyrics|The [a-z-]+) of a song(?: by (?P<artist>.+?))?"
        rf"(?:, titled {_quoted('title')})?\."
    ),
}


def _parse_prose(kind: str, text: str, line: str) -> tuple[dict[str, Any], str]:
    """Tags and rendering of a prose header's text (after ``<|kind|> ``)."""
    unconditioned = _PROSE[kind]({}, False)
    if text == unconditioned:
        return {}, "prose"
    m = _PROSE_PATTERNS[kind].fullmatch(text)
    if not m:
        raise FormatError(f"not a {kind} header: {line[:60]!r}")
    raw = {k: v for k, v in m.groupdict().items() if v is not None}
    if "part" in raw:
        phrase = raw["part"]
        raw["part"] = {v: k for k, v in PART_PHRASES.items()}.get(phrase, phrase.removeprefix("The "))
    tags = normalize_tags(kind, {k: _unescape_value(v, line) for k, v in raw.items()})
    for rendering in ("prose", "words"):
        if header(kind, tags, rendering) == f"{line}\n":
            return tags, rendering
    raise FormatError(f"not a {kind} header: {line[:60]!r}")


def escape_body(text: str) -> str:
    """Escape a body so it can never contain ``<|``."""
    return re.sub(r"<(\\*)\|", lambda m: "<" + m.group(1) + "\\|", text)


def unescape_body(text: str) -> str:
    """Invert ``escape_body``."""
    return re.sub(r"<(\\*)\\\|", lambda m: "<" + m.group(1) + "|", text)


def render(record: Record, rendering: str = "tags") -> str:
    """The full training text of a record: header (in ``rendering``), escaped body, end marker."""
    tags = normalize_tags(record.kind, record.tags)
    return header(record.kind, tags, rendering) + escape_body(record.text) + END


def parse_header(line: str) -> tuple[str, dict[str, Any]]:
    """Parse one header line (without its newline), in any rendering, into (kind, tags)."""
    kind, tags, _ = read_header(line)
    return kind, tags


def read_header(line: str) -> tuple[str, dict[str, Any], str]:
    """Parse one header line (without its newline) into (kind, tags, rendering)."""
    m = re.match(r"<\|([a-z]+)\|>", line)
    if not m:
        raise FormatError(f"not a header: {line[:60]!r}")
    kind, rest = m.group(1), line[m.end() :]
    check_kind(kind)
    if rest.startswith(" ") and not re.match(r" [a-z_]+: ", rest):
        return (kind, *_parse_prose(kind, rest[1:], line))
    raw: dict[str, Any] = {}
    for part in _split_fields(rest, line):
        key, sep, value = part.partition(": ")
        if not sep or not key.isidentifier():
            raise FormatError(f"bad header field {part!r} in {line[:60]!r}")
        raw[key] = _unescape_value(value, line)
    return kind, normalize_tags(kind, raw), "tags"


def _split_fields(rest: str, line: str) -> list[str]:
    """Split ``" a: 1 | b: 2"`` at unescaped bars, removing exactly the separator's spaces."""
    if not rest:
        return []
    fields, current, i = [], [], 0
    while i < len(rest):
        ch = rest[i]
        if ch == "\\" and i + 1 < len(rest):
            current.append(rest[i : i + 2])
            i += 2
            continue
        if ch == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fields.append("".join(current))
    out = []
    for n, f in enumerate(fields):
        last = n == len(fields) - 1
        if not f.startswith(" ") or (not last and not f.endswith(" ")):
            raise FormatError(f"bad header separator in {line[:60]!r}")
        out.append(f[1:] if last else f[1:-1])
    return out


def _unescape_value(value: str, line: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1 : i + 2]
            if nxt not in _UNESCAPE:
                raise FormatError(f"bad escape in header {line[:60]!r}")
            out.append(_UNESCAPE[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse(text: str) -> Record:
    """Parse rendered text back into a record (the end marker is optional)."""
    head, newline, body = text.partition("\n")
    if not newline:
        raise FormatError(f"no header line in {text[:60]!r}")
    kind, tags = parse_header(head)
    if body.endswith(END):
        body = body[: -len(END)]
    if HEADER_OPEN in body:
        raise FormatError(f"unescaped {HEADER_OPEN!r} in the body of {text[:60]!r}")
    return Record(kind, tags, unescape_body(body))
