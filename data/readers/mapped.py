"""Tables whose columns map onto a kind's fields: the generic CSV/TSV/JSONL reader and its presets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError
from linernotes.data.format import check_kind
from linernotes.data.problems import SourceError
from linernotes.data.readers.base import Item, ReaderOptions, ReadReport, build_item
from linernotes.data.readers.tables import Row, header_of, iter_rows, no_header

Getter = str | Callable[[Row], Any]  # a column name, or a function of the row
MISSING = {"", "NA", "N/A", "null", "None"}  # SQL NULL as tables export it


def fields_of(kind: str) -> tuple[list[str], list[str]]:
    """(required, optional) fields of a kind; every kind also takes text and id."""
    specs = check_kind(kind)
    required = ["text"] + [s.name for s in specs if s.required]
    optional = ["id"] + [s.name for s in specs if not s.required]
    if kind == "product":
        optional.append("helpful")
    return required, optional


def resolve_mapping(path: Path, kind: str, explicit: Mapping[str, str]) -> dict[str, str]:
    """Columns for each field: explicit ``--map`` entries over columns named like the field."""
    header = header_of(path)
    if not header:
        raise no_header(path)
    required, optional = fields_of(kind)
    unknown = [f for f in explicit if f not in required + optional]
    if unknown:
        raise InputError(
            f"--map {unknown[0]}=...: {kind} has no field {unknown[0]!r}; "
            f"fields are: {', '.join(required + optional)}"
        )
    for name, column in explicit.items():
        if column not in header:
            raise InputError(
                f"{path}: column {column!r} (mapped to {name}) not found; columns are: {', '.join(header)}"
            )
    mapping = {f: f for f in required + optional if f in header}
    mapping.update(explicit)
    missing = [f for f in required if f not in mapping]
    if missing:
        # The plain message leaves out the file's own column names: they are the uploader's text, unbounded.
        raise SourceError(
            f"{path}: no column for {missing[0]!r} (a {kind} needs {', '.join(required)}); "
            f"pass --map {missing[0]}=COLUMN; columns are: {', '.join(header)}",
            f"no {missing[0]!r} field in its rows (each {kind} row needs {', '.join(required)})",
        )
    return mapping


def get(row: Row, getter: Getter) -> Any:
    """A field's value, with table spellings of NULL turned into None."""
    value = getter(row) if callable(getter) else row.get(getter)
    if isinstance(value, str) and value.strip() in MISSING:
        return None
    return value


def read_mapped(
    path: Path, kind: str, fields: Mapping[str, Getter], opts: ReaderOptions, report: ReadReport
) -> Iterator[Item]:
    """Read every row of a table into records of ``kind`` using ``fields``."""
    names = [s.name for s in check_kind(kind)]
    no_votes = 0
    for where, row in iter_rows(path, report):
        helpful = get(row, fields["helpful"]) if "helpful" in fields else None
        no_votes += "helpful" in fields and helpful is None
        if opts.min_helpful and _as_int(helpful) < opts.min_helpful:
            report.drop(
                f"fewer than {opts.min_helpful} helpful votes (--min-helpful)",
                where,
                plain=f"fewer than {opts.min_helpful} helpful votes",
            )
            continue
        tags = {n: get(row, fields[n]) for n in names if n in fields}
        text = get(row, fields["text"]) or ""
        ident = get(row, fields["id"]) if "id" in fields else None
        group = f"id#{ident}" if ident is not None else ""  # not the file name: renaming moves nothing
        item = build_item(report, where, kind, tags, str(text), group)
        if item:
            yield item
    if no_votes:
        report.notes.append(f"{no_votes} rows have no helpful-vote count; counted as 0 votes")


def _as_int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def read_generic(kind: str) -> Callable[[Path, ReaderOptions, ReadReport], Iterator[Item]]:
    """The generic table reader for ``kind`` (columns named like fields, or ``--map``)."""

    def read(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
        mapping = resolve_mapping(path, kind, opts.mapping)
        report.notes.append("columns: " + ", ".join(f"{f}={c}" for f, c in mapping.items()))
        return read_mapped(path, kind, mapping, opts, report)

    return read
