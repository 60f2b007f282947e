"""Readers turn sources in their published formats into tagged records; see ``detect``."""

from __future__ import annotations

from pathlib import Path

from linernotes.common.errors import InputError
from linernotes.data.format import KINDS
from linernotes.data.problems import SourceError
from linernotes.data.readers import lyrics, pitchfork, product, songs
from linernotes.data.readers.base import Item, Reader, ReaderOptions, ReadReport
from linernotes.data.readers.mapped import fields_of, read_generic
from linernotes.data.readers.tables import header_of

TABLE_SUFFIXES = {".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json"}

SPECIFIC: list[Reader] = [*pitchfork.READERS, *product.READERS, *lyrics.READERS, *songs.READERS]
GENERIC = "table"
FORMATS = [r.name for r in SPECIFIC] + [GENERIC]

__all__ = ["FORMATS", "Item", "ReadReport", "Reader", "ReaderOptions", "detect", "expand_sources"]


def _generic(kind: str) -> Reader:
    return Reader(
        GENERIC,
        kind,
        "CSV/TSV/JSONL with columns named like fields, or --map",
        lambda p: True,
        read_generic(kind),
    )


def _kind_from_columns(path: Path) -> str | None:
    """The one kind whose required fields are all column names, if exactly one fits."""
    columns = set(header_of(path))
    fits = [k for k in KINDS if set(fields_of(k)[0]) <= columns]
    return fits[0] if len(fits) == 1 else None


def detect(path: Path, kind: str | None, fmt: str | None) -> Reader:
    """The reader for ``path``: the one named by ``fmt``, else the only specific format that matches."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if fmt == GENERIC:
        if kind is None:
            raise InputError(f"{path}: --format {GENERIC} needs --kind ({'|'.join(KINDS)})")
        return _generic(kind)
    if fmt is not None:
        by_name = {r.name: r for r in SPECIFIC}
        if fmt not in by_name:
            raise InputError(f"unknown --format {fmt!r}; formats are: {', '.join(FORMATS)}")
        reader = by_name[fmt]
    else:
        matches = [r for r in SPECIFIC if r.sniff(path)]
        if len(matches) > 1:
            names = ", ".join(r.name for r in matches)
            raise SourceError(
                f"{path}: could be any of {names}; pass --format", f"it could be read as any of {names}"
            )
        if not matches:
            guessed = kind or _kind_from_columns(path)
            if guessed is not None and path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
                return _generic(guessed)
            raise SourceError(
                f"{path}: unknown format; pass --format (one of: {', '.join(FORMATS)})"
                + ("" if kind else " and --kind for generic tables"),
                "it is not in a format this reads",
            )
        reader = matches[0]
    if kind is not None and reader.kind != kind:
        raise SourceError(
            f"{path}: format {reader.name} holds {reader.kind} records, not --kind {kind}",
            f"it holds {reader.kind} records ({reader.description}), not {kind}",
        )
    return reader


def expand_sources(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to read: directories expand to their files (a Pitchfork CSV directory stays whole).

    Returns the paths and notes about files skipped in directories (hidden files, SOURCE/README).
    """
    out: list[Path] = []
    skipped: list[str] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.is_dir() and not pitchfork.READERS[1].sniff(path):
            for child in sorted(path.rglob("*")):
                if not child.is_file():
                    continue
                if child.name.startswith(".") or child.stem.upper() in {"SOURCE", "README", "LICENSE"}:
                    skipped.append(f"{child}: not data (skipped)")
                    continue
                out.append(child)
        else:
            out.append(path)
    return out, skipped
