"""Pitchfork reviews as published by Nolan Conway: the SQLite file, or its tables exported as CSV.

Tables used: ``reviews`` (reviewid, score, artist, title), ``genres`` (reviewid, genre; 0..n rows per
review) and ``content`` (reviewid, content: the review text).

Genre decision: a review with several genres is tagged with the first one listed (the table keeps
Pitchfork's order, primary first); how many reviews had several is reported. A review with no genre
(SQL NULL, exported as ``NA``) is dropped and counted: its genre cannot be asked for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from linernotes.common.errors import InputError
from linernotes.data.readers.base import Item, Reader, ReaderOptions, ReadReport, build_item
from linernotes.data.readers.mapped import MISSING
from linernotes.data.readers.tables import header_of, iter_rows

GENRES = {
    "rock": "Rock",
    "electronic": "Electronic",
    "experimental": "Experimental",
    "rap": "Rap",
    "pop/r&b": "Pop/R&B",
    "metal": "Metal",
    "folk/country": "Folk/Country",
    "jazz": "Jazz",
    "global": "Global",
}
SQLITE_MAGIC = b"SQLite format 3\x00"


def display_genre(name: str) -> str:
    """Pitchfork's lower-case genre as people write it ("pop/r&b" -> "Pop/R&B")."""
    key = name.strip().lower()
    return GENRES.get(key) or "/".join(w.strip().title() for w in key.split("/"))


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _table_file(directory: Path, table: str) -> Path | None:
    for name in (f"{table}.csv", f"pitchfork_{table}.csv"):
        if (directory / name).is_file():
            return directory / name
    return None


def _csv_dir(path: Path) -> Path | None:
    """The directory of Pitchfork CSV tables that ``path`` is, or is one file of."""
    directory = path if path.is_dir() else path.parent
    reviews = _table_file(directory, "reviews")
    if reviews is None or (not path.is_dir() and path.name not in {reviews.name, f"pitchfork_{path.name}"}):
        return None
    return directory if {"reviewid", "score"} <= set(header_of(reviews)) else None


def _no_content(where: Path, reviews: int, looked_for: str) -> InputError:
    return InputError(
        f"{where}: Pitchfork tables hold {reviews:,} reviews (scores, genres) but no review text: "
        f"{looked_for}. The review text lives in the `content` table of the original SQLite file. "
        "A single CSV with a text column can be read with "
        "`--format table --kind review --map text=COLUMN,genre=COLUMN,score=COLUMN`."
    )


def read_sqlite(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
    """Read the Pitchfork SQLite file."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in ("reviews", "genres"):
            if table not in tables:
                raise InputError(f"{path}: no `{table}` table; tables are: {', '.join(sorted(tables))}")
        if "content" not in tables:
            count = db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0]
            raise _no_content(path, count, "the file has no `content` table")
        genres: dict[str, list[str]] = {}
        for rid, genre in db.execute("SELECT reviewid, genre FROM genres ORDER BY rowid"):
            if genre is not None and str(genre).strip() not in MISSING:
                genres.setdefault(str(rid), []).append(str(genre))
        rows = db.execute(
            "SELECT r.reviewid, r.score, c.content FROM reviews r "
            "LEFT JOIN content c ON c.reviewid = r.reviewid ORDER BY r.rowid"
        )
        yield from _items(path.name, ((str(i), s, c) for i, s, c in rows), genres, report)
    except sqlite3.DatabaseError as e:
        raise InputError(f"{path}: cannot read as SQLite: {e}") from None
    finally:
        db.close()


def read_csv_dir(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
    """Read Pitchfork tables exported as CSV files in one directory."""
    directory = _csv_dir(path)
    assert directory is not None  # sniffed before
    reviews_file = _table_file(directory, "reviews")
    genres_file = _table_file(directory, "genres")
    content_file = _table_file(directory, "content")
    scratch = ReadReport(str(directory), "pitchfork-csv")  # rows of side tables are not records
    reviews = [(str(r["reviewid"]), r.get("score")) for _, r in iter_rows(reviews_file, scratch)]
    if content_file is None:
        raise _no_content(directory, len(reviews), "there is no content.csv or pitchfork_content.csv")
    if genres_file is None:
        raise InputError(f"{directory}: no genres.csv or pitchfork_genres.csv beside {reviews_file.name}")
    genres: dict[str, list[str]] = {}
    for _, row in iter_rows(genres_file, scratch):
        genre = row.get("genre")
        if genre is not None and str(genre).strip() not in MISSING:
            genres.setdefault(str(row["reviewid"]), []).append(str(genre))
    content = {str(r["reviewid"]): r.get("content") for _, r in iter_rows(content_file, scratch)}
    rows = ((rid, score, content.get(rid)) for rid, score in reviews)
    yield from _items(reviews_file.name, rows, genres, report)


def _items(
    name: str, rows: Iterator[tuple[str, object, object]], genres: dict[str, list[str]], report: ReadReport
) -> Iterator[Item]:
    seen: set[str] = set()
    several = 0
    for rid, score, text in rows:
        report.rows += 1
        where = f"{name}:reviewid {rid}"
        if rid in seen:
            report.drop("duplicate reviewid", where)
            continue
        seen.add(rid)
        listed = genres.get(rid, [])
        if not listed:
            report.drop("no genre", where)
            continue
        several += len(listed) > 1
        if text is None:
            report.drop("no review text in the content table", where)
            continue
        tags = {"genre": display_genre(listed[0]), "score": None if score in MISSING else score}
        item = build_item(report, where, "review", tags, str(text), f"pitchfork#{rid}")
        if item:
            yield item
    report.notes.append(f"{several} reviews list several genres; each is tagged with the first listed")


READERS = [
    Reader(
        "pitchfork-sqlite",
        "review",
        "Pitchfork SQLite database (tables reviews, genres, content)",
        _is_sqlite,
        read_sqlite,
    ),
    Reader(
        "pitchfork-csv",
        "review",
        "Pitchfork tables exported as CSV (reviews.csv, genres.csv, content.csv; pitchfork_ prefix ok)",
        lambda p: _csv_dir(p) is not None,
        read_csv_dir,
    ),
]
