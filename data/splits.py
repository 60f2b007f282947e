"""Deterministic train/val/test splits, and reading/writing the prepared JSON-lines files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from linernotes.common.errors import FormatError, InputError
from linernotes.data.format import make_record
from linernotes.data.readers.base import Item

SPLITS = ("train", "val", "test")


def assign_split(group: str, val_fraction: float, test_fraction: float) -> str:
    """The split of a group key: a pure function of the key, so adding data never moves old examples."""
    digest = hashlib.blake2b(group.encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def to_json(item: Item) -> str:
    """One JSON line: kind, tags, text, source, group."""
    r = item.record
    return json.dumps(
        {"kind": r.kind, "tags": dict(r.tags), "text": r.text, "source": item.source, "group": item.group},
        ensure_ascii=False,
    )


def write_split(path: Path, items: Iterable[Item]) -> int:
    """Write items as JSON lines; returns how many."""
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for item in items:
            f.write(to_json(item) + "\n")
            n += 1
    return n


def iter_split(path: Path) -> Iterator[Item]:
    """Read a prepared JSON-lines file back, validating every record against the tag format."""
    if not path.is_file():
        raise InputError(f"{path}: not found (run `linernotes prepare` first)")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                record = make_record(obj["kind"], obj.get("tags") or {}, obj["text"])
            except (json.JSONDecodeError, KeyError, TypeError, FormatError) as e:
                raise InputError(f"{path}:line {n}: not a prepared example ({e})") from None
            yield Item(record, obj.get("source", f"{path.name}:{n}"), obj.get("group", ""))


def read_split(directory: Path, split: str) -> list[Item]:
    """All items of one split of a prepared directory."""
    return list(iter_split(Path(directory) / f"{split}.jsonl"))
