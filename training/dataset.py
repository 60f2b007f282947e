"""The examples a run trains and validates on, their fingerprint, and the tags they teach."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError
from linernotes.data.format import Record
from linernotes.data.splits import iter_split, read_split
from linernotes.model.card import CATEGORICAL


@dataclass
class RunData:
    """Training and validation records, with a hash of exactly what was read."""

    train: list[Record]
    val: list[Record]
    digest: str
    sources: list[str]


def load(data: str, extra: list[str], max_examples: int | None = None) -> RunData:
    """Read ``DATA/train.jsonl`` and ``val.jsonl`` plus extra train files; fail clearly when empty."""
    directory = Path(data)
    if not directory.is_dir():
        raise InputError(f"--data {data}: no such directory (run `linernotes prepare ... --out {data}`)")
    train_file = directory / "train.jsonl"
    if not train_file.is_file():
        raise InputError(f"--data {data}: no train.jsonl split (run `linernotes prepare ... --out {data}`)")
    train = [i.record for i in read_split(directory, "train")]
    sources = [str(train_file)]
    for path in extra:
        p = Path(path)
        file = p / "train.jsonl" if p.is_dir() else p
        train.extend(i.record for i in iter_split(file))
        sources.append(str(file))
    if max_examples is not None:
        train = train[:max_examples]
    if not train:
        raise InputError(f"--data {data}: the train split is empty; nothing to train on")
    val_file = directory / "val.jsonl"
    val = [i.record for i in read_split(directory, "val")] if val_file.is_file() else []
    return RunData(train, val, fingerprint(train, val), sources)


def fingerprint(*splits: list[Record]) -> str:
    """A short hash of the records (tags and text), recorded in runs and checkpoints."""
    h = hashlib.blake2b(digest_size=10)
    for split in splits:
        for r in split:
            h.update(repr((r.kind, sorted(r.tags.items()), r.text)).encode())
        h.update(b"\x00split\x00")
    return h.hexdigest()


def known_tags(records: list[Record]) -> dict[str, dict[str, Any]]:
    """What a model trained on ``records`` knows: per kind, counts of each categorical tag value,
    the score range and ratings. This becomes the checkpoint card's ``tags``."""
    out: dict[str, dict[str, Any]] = {}
    counts: dict[tuple[str, str], Counter[str]] = {}
    scores: dict[str, list[float]] = {}
    for r in records:
        if not r.tags:
            continue  # unconditioned examples teach no tag
        entry = out.setdefault(r.kind, {"examples": 0})
        entry["examples"] += 1
        for name, value in r.tags.items():
            if name in CATEGORICAL or name == "rating":
                counts.setdefault((r.kind, name), Counter())[str(value)] += 1
            elif name == "score":
                scores.setdefault(r.kind, []).append(float(value))
    for (kind, name), c in counts.items():
        out[kind][name] = dict(c.most_common())
    for kind, values in scores.items():
        out[kind]["score_range"] = [min(values), max(values)]
    return out
