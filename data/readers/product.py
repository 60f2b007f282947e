"""Product reviews in the three published layouts: McAuley/SNAP JSON lines, Amazon TSV, Datafiniti CSV.

Each is a preset of the mapped-table reader: rating -> ``rating``, review title -> ``headline``,
review body -> text, helpful votes -> ``--min-helpful`` filter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from linernotes.data.readers.base import Item, Reader, ReaderOptions, ReadReport
from linernotes.data.readers.mapped import Getter, read_mapped
from linernotes.data.readers.tables import Row, header_of, table_kind


def _first_vote(row: Row) -> object:
    votes = row.get("helpful")
    return votes[0] if isinstance(votes, list) and votes else None


def _join(*columns: str) -> Getter:
    return lambda row: "/".join(str(row.get(c, "")) for c in columns)


MCAULEY: dict[str, Getter] = {
    "text": "reviewText",
    "rating": "overall",
    "headline": "summary",
    "helpful": _first_vote,  # "helpful": [helpful_yes, total_votes]
    "id": _join("reviewerID", "asin"),
}
AMAZON_TSV: dict[str, Getter] = {
    "text": "review_body",
    "rating": "star_rating",
    "headline": "review_headline",
    "helpful": "helpful_votes",
    "id": "review_id",
}
DATAFINITI: dict[str, Getter] = {
    "text": "reviews.text",
    "rating": "reviews.rating",
    "headline": "reviews.title",
    "helpful": "reviews.numHelpful",
    # `id` names the product, not the review: add who wrote it and when.
    "id": _join("id", "reviews.username", "reviews.date"),
}


def _has(path: Path, *columns: str, kinds: tuple[str, ...]) -> bool:
    return table_kind(path) in kinds and set(columns) <= set(header_of(path))


def _reader(fields: dict[str, Getter]):
    def read(path: Path, opts: ReaderOptions, report: ReadReport) -> Iterator[Item]:
        return read_mapped(path, "product", fields, opts, report)

    return read


READERS = [
    Reader(
        "mcauley",
        "product",
        "McAuley/SNAP Amazon JSON lines (overall, summary, reviewText, helpful)",
        lambda p: _has(p, "overall", "reviewText", kinds=("jsonl",)),
        _reader(MCAULEY),
    ),
    Reader(
        "amazon-tsv",
        "product",
        "Amazon customer reviews TSV (star_rating, review_headline, review_body, helpful_votes)",
        lambda p: _has(p, "star_rating", "review_body", kinds=("tsv", "csv")),
        _reader(AMAZON_TSV),
    ),
    Reader(
        "datafiniti",
        "product",
        "Datafiniti CSV (reviews.rating, reviews.title, reviews.text, reviews.numHelpful)",
        lambda p: _has(p, "reviews.rating", "reviews.text", kinds=("csv",)),
        _reader(DATAFINITI),
    ),
]
