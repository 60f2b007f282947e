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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linernotes.common.errors import FormatError

FORMAT_VERSION = 1
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
        out[spec.name] = _convert(kind, spec, value)
    return out


def _convert(kind: str, spec: TagSpec, value: Any) -> Any:
    where = f"{kind}: tag {spec.name!r}"
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


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n").replace("\r", "\\r")


_UNESCAPE = {"\\": "\\", "|": "|", "n": "\n", "r": "\r"}


def header(kind: str, tags: Mapping[str, Any]) -> str:
    """The header line (with its newline) for already-normalized tags."""
    check_kind(kind)
    fields = " |".join(f" {k}: {_format_value(v)}" for k, v in tags.items())
    return f"<|{kind}|>{fields}\n"


def prompt(kind: str, **tags: Any) -> str:
    """The exact text generation starts from: the header for these tags (none = unconditioned)."""
    return header(kind, normalize_tags(kind, tags))


def escape_body(text: str) -> str:
    """Escape a body so it can never contain ``<|``."""
    return re.sub(r"<(\\*)\|", lambda m: "<" + m.group(1) + "\\|", text)


def unescape_body(text: str) -> str:
    """Invert ``escape_body``."""
    return re.sub(r"<(\\*)\\\|", lambda m: "<" + m.group(1) + "|", text)


def render(record: Record) -> str:
    """The full training text of a record: header, escaped body, end marker."""
    tags = normalize_tags(record.kind, record.tags)
    return header(record.kind, tags) + escape_body(record.text) + END


def parse_header(line: str) -> tuple[str, dict[str, Any]]:
    """Parse one header line (without its newline) into (kind, tags)."""
    m = re.match(r"<\|([a-z]+)\|>", line)
    if not m:
        raise FormatError(f"not a header: {line[:60]!r}")
    kind, rest = m.group(1), line[m.end() :]
    check_kind(kind)
    raw: dict[str, Any] = {}
    for part in _split_fields(rest, line):
        key, sep, value = part.partition(": ")
        if not sep or not key.isidentifier():
            raise FormatError(f"bad header field {part!r} in {line[:60]!r}")
        raw[key] = _unescape_value(value, line)
    return kind, normalize_tags(kind, raw)


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
