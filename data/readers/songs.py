"""A plain songs file: one artist's lyrics, songs separated by blank lines, one record per song.

When stanzas inside songs are separated by one blank line, songs are separated by two or more: the
reader uses runs of two or more blank lines as separators when the file has any, else single ones.
A file with no blank lines at all (common in scraped collections) has no song boundaries; it is
split into chunks of ``--chunk-lines`` lines with a warning, rather than becoming one huge "song".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from linernotes.common.errors import FormatError
from linernotes.data.format import normalize_part
from linernotes.data.readers.base import Item, Reader, ReaderOptions, ReadReport, build_item
from linernotes.data.readers.lyrics import artist_from_filename, is_sectioned_text
from linernotes.data.readers.tables import open_text

# Annotations some collections glue into lines: "[Chorus]", "[Chorus:]", "[Clean version:]", "[x2:]".
_INLINE_LABEL = re.compile(r"\s*\[([^\[\]\n]{1,40})\]")


def _strip_labels(text: str, report: ReadReport) -> str:
    def repl(m: re.Match[str]) -> str:
        label = m.group(1).strip()
        try:
            normalize_part(label.rstrip(":"))
        except FormatError:
            if not label.endswith(":"):
                return m.group(0)
        report.tally("inline labels removed", label)
        return ""

    return _INLINE_LABEL.sub(repl, text)


def split_songs(text: str, chunk_lines: int) -> tuple[list[str], str | None]:
    """Split a songs file into songs; also return how it was split when that needs a warning."""
    text = text.replace("\r\n", "\n").strip("\n")
    if re.search(r"\n[ \t]*\n[ \t]*\n", text):
        return [s for s in re.split(r"\n(?:[ \t]*\n){2,}", text) if s.strip()], None
    if re.search(r"\n[ \t]*\n", text):
        return [s for s in re.split(r"\n[ \t]*\n", text) if s.strip()], None
    lines = [line for line in text.split("\n") if line.strip()]
    chunks = ["\n".join(lines[i : i + chunk_lines]) for i in range(0, len(lines), chunk_lines)]
    return chunks, f"no blank lines separate songs; split into {len(chunks)} chunks of {chunk_lines} lines"


def read_songs(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
    """Read a plain songs file into one ``part: song`` record per song."""
    with open_text(path) as f:
        text = _strip_labels(f.read(), report)
    artist = opts.artist or artist_from_filename(path, hyphens=True)
    songs, warning = split_songs(text, opts.chunk_lines)
    if warning:
        report.warnings.append(
            f"{path.name}: {warning} (song boundaries are unknown; set --chunk-lines to change the size)"
        )
    for n, song in enumerate(songs, 1):
        report.rows += 1
        tags = {"part": "song", "artist": artist}
        item = build_item(report, f"{path.name}:song {n}", "lyrics", tags, song.strip(), "")
        if item:
            yield item


READERS = [
    Reader(
        "songs-text",
        "lyrics",
        "plain songs file, one artist, songs separated by blank lines",
        lambda p: p.suffix.lower() == ".txt" and not is_sectioned_text(p),
        read_songs,
    )
]
