"""Counts that describe a prepared dataset: per-tag counts, score histogram, tokens per split."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from linernotes.data.readers.base import Item

log = logging.getLogger(__name__)
FREE_TEXT = ("title", "headline")


def _bucket_order(item: tuple[str, int]) -> float:
    return float(item[0].split("-")[0])


class TokenCounter:
    """Counts tokens with a locally available tokenizer (never downloaded), else estimates from bytes."""

    def __init__(self, name: str) -> None:
        self.exact = False
        self.label = "estimated as UTF-8 bytes / 4 (no tokenizer available locally)"
        self._encode: Callable[[str], int] = lambda text: max(1, len(text.encode()) // 4)
        try:
            from transformers import AutoTokenizer  # heavy: imported only when counting

            tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError, ImportError) as e:
            log.debug("tokenizer %s not available locally: %s", name, e)
            return
        self.exact, self.label = True, f"{name} tokenizer"
        self._encode = lambda text: len(tok(text, add_special_tokens=False)["input_ids"])

    def __call__(self, text: str) -> int:
        return self._encode(text)


def tag_counts(items: Iterable[Item]) -> dict[str, dict[str, Any]]:
    """Per kind: how many examples, and counts of each tag value (scores as a histogram)."""
    kinds: dict[str, dict[str, Counter[str]]] = {}
    totals: Counter[str] = Counter()
    for item in items:
        r = item.record
        totals[r.kind] += 1
        per = kinds.setdefault(r.kind, {})
        for key, value in r.tags.items():
            if key in FREE_TEXT:
                continue  # one value per record: not useful as a count
            bucket = f"{int(value)}.0-{int(value)}.9" if key == "score" and value < 10 else str(value)
            if key == "score" and value >= 10:
                bucket = "10.0"
            per.setdefault(key, Counter())[bucket] += 1
    return {
        kind: {
            "examples": totals[kind],
            **{
                k: dict(sorted(c.items(), key=_bucket_order) if k == "score" else c.most_common())
                for k, c in per.items()
            },
        }
        for kind, per in kinds.items()
    }
