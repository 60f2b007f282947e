"""Row iteration over CSV, TSV and JSON-lines files, with the line each row starts on."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError
from linernotes.data.problems import SourceError
from linernotes.data.readers.base import ReadReport
from linernotes.data.readers.jsontext import MAX_DEPTH, invalid_json, loads, raw_decode, too_deep

Row = dict[str, Any]
# Review texts can be long: csv's default limit (131,072 characters) raised `_csv.Error` on real files,
# first while detecting a format. The limit is process-wide; every CSV read goes through this module.
FIELD_LIMIT = 1 << 30
csv.field_size_limit(FIELD_LIMIT)


def open_text(path: Path):
    """Open a text file for reading; bytes that are not UTF-8 survive as lone surrogates to be counted."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")


def table_kind(path: Path) -> str:
    """'csv', 'tsv' or 'jsonl', from the extension (JSON arrays count as jsonl)."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix in {".tsv", ".tab"}:
        return "tsv"
    return "csv"


def header_of(path: Path) -> list[str]:
    """Column names of a table file: the CSV/TSV header, or the keys of the first JSON object."""
    if not path.is_file():
        return []
    try:
        with open_text(path) as f:
            if table_kind(path) == "jsonl":
                first = f.read(1 << 16).lstrip()
                if first.startswith("["):
                    first = first[1:].lstrip()
                obj = raw_decode(first, str(path))  # refuses deep nesting: no reader could read it
                return list(obj) if isinstance(obj, dict) else []
            return next(_csv_reader(f, table_kind(path)), [])
    except (ValueError, UnicodeError, csv.Error):
        return []  # not a table this can read: detection moves on to other formats


def no_header(path: Path) -> SourceError:
    """Why ``path`` has no column names: JSON that does not parse, a first row that is no object, no rows."""
    with open_text(path) as f:
        text = f.read()
    stripped = text.lstrip()
    if not stripped:
        return SourceError(f"{path}: empty file", "it is empty")
    if table_kind(path) != "jsonl":  # a CSV whose first line is blank
        return SourceError(f"{path}: no header row", "its first row names no columns")
    # The whole array, or the first line with its leading blank lines: line numbers stay the file's.
    end = -1 if stripped.startswith("[") else text.find("\n", len(text) - len(stripped))
    try:
        loads(text if end < 0 else text[:end], str(path))
    except json.JSONDecodeError as e:
        return invalid_json(str(path), e)
    return SourceError(
        f"{path}: the first row is not a JSON object; expected one object of fields per row",
        "its first row is not a JSON object of fields",
    )


def iter_rows(path: Path, report: ReadReport) -> Iterator[tuple[str, Row]]:
    """Yield ("file:line N", row) for every data row; unreadable rows are counted, not raised."""
    kind = table_kind(path)
    if kind == "jsonl":
        yield from _iter_json(path, report)
    else:
        yield from _iter_csv(path, report, kind)


def _csv_reader(f, kind: str):
    if kind == "tsv":
        # Published review TSVs do not quote fields, and their texts contain stray double quotes.
        return csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(f)


def _iter_csv(path: Path, report: ReadReport, kind: str) -> Iterator[tuple[str, Row]]:
    with open_text(path) as f:
        reader = _csv_reader(f, kind)
        header = next(reader, None)
        if not header:
            raise SourceError(
                f"{path}: empty file, expected a header row", "it is empty (expected a header row)"
            )
        start = reader.line_num + 1
        try:
            for values in reader:
                where = f"{path.name}:line {start}"
                start = reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue  # blank line
                report.rows += 1
                if len(values) != len(header):
                    report.drop(f"wrong number of columns (expected {len(header)})", where)
                    continue
                yield where, dict(zip(header, values, strict=True))
        except csv.Error as e:
            report.drop("malformed CSV (rest of file unreadable)", f"{path.name}:line {start}: {e}")


def _iter_json(path: Path, report: ReadReport) -> Iterator[tuple[str, Row]]:
    with open_text(path) as f:
        text = f.read()
    if text.lstrip().startswith("["):
        try:
            rows = loads(text, str(path))
        except json.JSONDecodeError as e:
            raise invalid_json(str(path), e) from None
        for n, obj in enumerate(rows, 1):
            report.rows += 1
            if isinstance(obj, dict):
                yield f"{path.name}:item {n}", obj
            else:
                report.drop("not a JSON object", f"{path.name}:item {n}")
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        report.rows += 1
        where = f"{path.name}:line {n}"
        if too_deep(line):
            report.drop(f"JSON nested deeper than {MAX_DEPTH} levels", where)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            report.drop("invalid JSON", f"{where}: {e.msg}")
            continue
        if isinstance(obj, dict):
            yield where, obj
        else:
            report.drop("not a JSON object", where)
