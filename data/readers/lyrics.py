"""Lyrics with section headers (``[Chorus]``, ``[Verse 1: Artist]``): one record per section.

Sources: Genius-scraped JSON (``{title: lyrics}`` per artist file, artist from the file name) and
plain text (artist from ``--artist`` or the section header; songs start with a ``# Title`` line,
otherwise the file is one song). Genius page boilerplate is stripped before sections are split.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from linernotes.common.errors import FormatError, InputError
from linernotes.data.format import normalize_part
from linernotes.data.problems import SourceError
from linernotes.data.readers.base import Item, Reader, ReaderOptions, ReadReport, build_item
from linernotes.data.readers.jsontext import invalid_json, loads
from linernotes.data.readers.tables import open_text

# Genius boilerplate, as it appears glued to the lyrics in scraped strings.
# Only on the first line: a lazy match across lines could swallow lyrics up to a later "Lyrics[".
_PREFIX = re.compile(r"^\s*\d+\s*Contributors?[^\n]{0,400}?Lyrics(?=\[|\n|$)")
_PREFIX_LINE = re.compile(r"^\s*\d+\s*Contributors?[^\n]*\n?")
_ALSO_LIKE = re.compile(r"You might also like")
_TICKETS = re.compile(r"(?:See [^\n\[]{1,100}? ?Live)?Get tickets as low as \$\d+(?:\.\d{2})?")
_EMBED = re.compile(r"\d*Embed\s*$")
# A header: "[Label]" or "[Label: performer]" followed by the end of its line.
_HEADER = re.compile(r"\[([^\[\]\n]{1,200})\][ \t]*(?=\n|$)")
_LINE_HEADER = re.compile(r"^[ \t]*\[([^\[\]\n]{1,200})\][ \t]*$", re.MULTILINE)


def strip_boilerplate(raw: str, removed: Counter[str]) -> str:
    """Remove Genius page furniture (contributors, ads, "You might also like", "NEmbed")."""
    text, n = _PREFIX.subn("", raw, count=1)
    if not n:
        text, n = _PREFIX_LINE.subn("", raw, count=1)
    removed["contributors/title prefix"] += n
    for name, pattern in (
        ("'You might also like'", _ALSO_LIKE),
        ("ticket ads", _TICKETS),
        ("NEmbed", _EMBED),
    ):
        text, n = pattern.subn("", text)
        removed[name] += n
    return text


def split_sections(text: str) -> list[tuple[str | None, str]]:
    """Split lyrics into (label, body) pairs; text before the first header has label None.

    A bracket at the start of a line is always a header; one glued after lyrics (what boilerplate
    removal leaves: "...what I like[Verse 2]") only if its label names a part, so inline
    "[?]" stays lyrics.
    """
    cuts = []
    for m in _HEADER.finditer(text):
        at_line_start = m.start() == 0 or text[m.start() - 1] == "\n"
        if at_line_start or _part_or_none(m.group(1)):
            cuts.append(m)
    sections: list[tuple[str | None, str]] = []
    start, label = 0, None
    for m in cuts:
        sections.append((label, text[start : m.start()]))
        start, label = m.end(), m.group(1).strip()
    sections.append((label, text[start:]))
    return [(lab, body.strip()) for lab, body in sections if lab is not None or body.strip()]


def _part_or_none(label: str) -> str | None:
    name = label.split(":", 1)[0]
    try:
        return normalize_part(name)
    except FormatError:
        return None


def song_items(
    text: str, artist: str | None, title: str | None, where: str, report: ReadReport, titles: bool = False
) -> Iterator[Item]:
    """Records for one song's sections; a song without any header is one "song" record.

    The title always groups a song's sections into one split; it becomes a tag only with ``titles``.
    """
    group = f"{artist or ''}/{title or where}"
    title = title if titles else None
    sections = split_sections(text)
    if all(label is None for label, _ in sections):
        report.rows += 1
        item = build_item(report, where, "lyrics", _tags("song", artist, title), text.strip(), group)
        if item:
            yield item
        return
    for n, (label, body) in enumerate(sections, 1):
        report.rows += 1
        at = f"{where} section {n}"
        if label is None:
            report.drop("text before the first section header", at)
            continue
        part = _part_or_none(label)
        if part is None:
            report.drop("section label is not a song part", f"{at} [{label}]")
            report.tally("section labels dropped", label.split(":", 1)[0].strip())
            continue
        performer = label.split(":", 1)[1].strip() if ":" in label else ""
        report.tally("sections by part", part)
        item = build_item(report, at, "lyrics", _tags(part, artist or performer or None, title), body, group)
        if item:
            yield item


def _tags(part: str, artist: str | None, title: str | None) -> dict[str, str | None]:
    return {"part": part, "artist": artist, "title": title}


def _finish(report: ReadReport, removed: Counter[str]) -> None:
    if +removed:
        report.tallies.setdefault("boilerplate removed", Counter()).update(+removed)


def artist_from_filename(path: Path, *, hyphens: bool = False) -> str:
    """ "Bruno_Mars.json" -> "Bruno Mars"; "bruno-mars.txt" -> "Bruno Mars" with ``hyphens``."""
    name = path.stem.replace("_", " ")
    if hyphens:
        name = name.replace("-", " ")
    name = " ".join(name.split())
    return name.title() if name.islower() else name


def _is_genius(path: Path) -> bool:
    """One JSON object (not JSON lines) whose values are all strings: song title -> lyrics."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open_text(path) as f:
            obj = loads(f.read(), str(path))
    except (OSError, InputError, ValueError):
        return False
    return isinstance(obj, dict) and bool(obj) and all(isinstance(v, str) for v in obj.values())


def read_genius(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
    """Read one Genius artist file: ``{song title: raw lyrics}``."""
    with open_text(path) as f:
        text = f.read()
    try:
        songs = loads(text, str(path))
    except json.JSONDecodeError as e:
        raise invalid_json(str(path), e) from None
    if not isinstance(songs, dict):
        raise SourceError(
            f"{path}: expected an object of song title -> lyrics",
            "expected one JSON object of song title -> lyrics",
        )
    artist = opts.artist or artist_from_filename(path)
    removed: Counter[str] = Counter()
    for title, raw in songs.items():
        if not isinstance(raw, str):
            report.rows += 1
            report.drop("lyrics are not text", f"{path.name}:{title!r}")
            continue
        text = strip_boilerplate(raw, removed)
        yield from song_items(text, artist, title, f"{path.name}:{title!r}", report, opts.titles)
    _finish(report, removed)


def is_sectioned_text(path: Path) -> bool:
    """A text file with at least one whole-line header that names a part ("[Chorus]")."""
    if path.suffix.lower() not in {".txt", ".lyrics", ".md"} or not path.is_file():
        return False
    try:
        with open_text(path) as f:
            text = f.read()
    except (OSError, InputError):
        return False
    return any(_part_or_none(m.group(1)) for m in _LINE_HEADER.finditer(text))


def read_sectioned_text(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
    """Read plain-text lyrics with section headers; ``# Title`` lines start songs."""
    with open_text(path) as f:
        text = f.read()
    removed: Counter[str] = Counter()
    songs = re.split(r"^# (.+)$", text, flags=re.MULTILINE)
    titled = [(None, songs[0])] + list(zip(songs[1::2], songs[2::2], strict=True))
    for title, body in titled:
        if title is None and not body.strip():
            continue
        where = f"{path.name}:{title!r}" if title else path.name
        yield from song_items(
            strip_boilerplate(body, removed), opts.artist, title, where, report, opts.titles
        )
    _finish(report, removed)


READERS = [
    Reader(
        "genius-json",
        "lyrics",
        "Genius-scraped JSON, {title: lyrics} per artist file",
        _is_genius,
        read_genius,
    ),
    Reader(
        "lyrics-text",
        "lyrics",
        "plain-text lyrics with [Section] headers (# Title lines start songs)",
        is_sectioned_text,
        read_sectioned_text,
    ),
]
