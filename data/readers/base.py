"""What every reader shares: the item it yields, the report it keeps, and the options it takes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.common.errors import FormatError
from linernotes.data.clean import has_undecodable
from linernotes.data.format import Record, make_record


@dataclass(frozen=True)
class Item:
    """A record plus where it came from and the key that decides its split."""

    record: Record
    source: str  # "file:row" or "file:song/section", for reports
    group: str  # split key: records sharing it (one song's sections, one review id) share a split


@dataclass
class ReaderOptions:
    """Options readers understand; each reader uses the ones that apply to it."""

    mapping: dict[str, str] = field(default_factory=dict)  # field -> column, e.g. text=review
    min_helpful: int = 0  # product reviews: keep those with at least this many helpful votes
    artist: str | None = None  # lyrics/songs: artist for every record (else from the file name)
    chunk_lines: int = 20  # songs files without separators: lines per example
    titles: bool = False  # lyrics: keep song titles as a tag (off: long headers, and a key for recitation)


@dataclass
class ReadReport:
    """What a reader kept and dropped from one source, and why; nothing is lost silently."""

    source: str
    reader: str
    rows: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    where: dict[str, list[str]] = field(default_factory=dict)  # reason -> first locations
    notes: list[str] = field(default_factory=list)  # decisions taken, with counts
    warnings: list[str] = field(default_factory=list)
    tallies: dict[str, Counter[str]] = field(default_factory=dict)  # topic -> value counts
    plain: dict[str, str] = field(default_factory=dict)  # reason -> its wording without options, if different

    def tally(self, topic: str, value: str) -> None:
        """Count one occurrence of ``value`` under ``topic`` (e.g. section labels that were dropped)."""
        self.tallies.setdefault(topic, Counter())[value] += 1

    def drop(self, reason: str, where: str, plain: str | None = None) -> None:
        """Count one dropped row under ``reason``, remembering the first few locations.

        ``plain`` words the reason without CLI options, when ``reason`` names one.
        """
        self.dropped[reason] += 1
        if plain is not None:
            self.plain[reason] = plain
        places = self.where.setdefault(reason, [])
        if len(places) < 3:
            places.append(where)

    def plain_dropped(self) -> Counter[str]:
        """The drop counts by reason worded without CLI options."""
        counts: Counter[str] = Counter()
        for reason, n in self.dropped.items():
            counts[self.plain.get(reason, reason)] += n
        return counts

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "source": self.source,
            "reader": self.reader,
            "rows": self.rows,
            "kept": self.kept,
            "dropped": dict(self.dropped.most_common()),
            "examples": self.where,
            "notes": self.notes,
            "warnings": self.warnings,
            "tallies": {k: dict(v.most_common(20)) for k, v in self.tallies.items()},
        }


ReadFn = Callable[[Path, ReaderOptions, ReadReport], Iterator[Item]]


@dataclass(frozen=True)
class Reader:
    """A named input format: which kind it yields, how to recognise it, and how to read it."""

    name: str
    kind: str | None  # None: the generic reader, whose kind comes from --kind
    description: str
    sniff: Callable[[Path], bool]
    read: ReadFn


def build_item(
    report: ReadReport, where: str, kind: str, tags: dict[str, Any], text: str, group: str
) -> Item | None:
    """Validate one record; on failure count the drop (reason names the field) and return None."""
    if has_undecodable(text) or any(isinstance(v, str) and has_undecodable(v) for v in tags.values()):
        report.drop("undecodable bytes (not UTF-8)", where)
        return None
    if not text:
        report.drop("empty text", where)
        return None
    try:
        record = make_record(kind, tags, text)
    except FormatError as e:
        report.drop(_reason(str(e)), f"{where}: {e}")
        return None
    report.kept += 1
    return Item(record, where, group)


def _reason(message: str) -> str:
    """Group messages like "review: tag 'score' must be between ..., got '11.5'" by their tag."""
    head, _, _ = message.partition(", got")
    # "part 'Skit 3' is not one of: ...": the label goes with the row's location, not into the reason
    # (one reason per label would split the count and repeat the file's text in every summary).
    head = re.sub(r"^part .* is not one of:", "part is not one of:", head, flags=re.DOTALL)
    return head.replace("review: ", "").replace("product: ", "").replace("lyrics: ", "")
