"""Diversity within a condition: distinct-n, self-BLEU, and duplicate generations.

All measured per condition (ten choruses asked for the same way should not be one chorus) and
averaged; real text of the same conditions, cut to the generated length, gives the reference.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from linernotes.model.copyguard import words


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams in a group of texts (1.0: nothing repeats)."""
    grams = [g for t in texts for g in _ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def bleu(hypothesis: list[str], references: list[list[str]], max_n: int = 4) -> float:
    """Sentence BLEU-4 with clipped counts, brevity penalty and epsilon smoothing (0.1) for zero counts."""
    if not hypothesis or not references:
        return 0.0
    log_p = 0.0
    for n in range(1, max_n + 1):
        hyp = Counter(_ngrams(hypothesis, n))
        total = sum(hyp.values())
        if total == 0:
            return 0.0
        best_ref: Counter = Counter()
        for ref in references:
            best_ref |= Counter(_ngrams(ref, n))  # max count per n-gram over references
        clipped = sum(min(c, best_ref[g]) for g, c in hyp.items())
        log_p += math.log((clipped or 0.1) / total) / max_n
    closest = min((abs(len(r) - len(hypothesis)), len(r)) for r in references)[1]
    bp = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
    return bp * math.exp(log_p)


def self_bleu(texts: list[str]) -> float:
    """Mean BLEU of each text against the others of its group (1.0: all the same)."""
    tokens = [words(t) for t in texts if words(t)]
    if len(tokens) < 2:
        return float("nan")
    return sum(bleu(t, tokens[:i] + tokens[i + 1 :]) for i, t in enumerate(tokens)) / len(tokens)


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


@dataclass(frozen=True)
class Duplicates:
    """Texts that repeat an earlier text of their group exactly (case and spacing aside)."""

    n: int
    duplicates: int
    share: float


@dataclass(frozen=True)
class Diversity:
    """Distinct-n and self-BLEU averaged over groups of texts asked for the same way, and duplicates."""

    groups: int
    distinct_1: float
    distinct_2: float
    distinct_3: float
    self_bleu: float
    duplicates: Duplicates


def duplicate_share(groups: Iterable[list[str]]) -> Duplicates:
    """Share of texts that repeat an earlier text of the same group exactly (case and spacing aside)."""
    total = dupes = 0
    for texts in groups:
        seen: set[str] = set()
        for t in texts:
            key = _normal(t)
            if not key:
                continue
            total += 1
            dupes += key in seen
            seen.add(key)
    return Duplicates(total, dupes, dupes / total if total else float("nan"))


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else float("nan")


def diversity(groups: dict[str, list[str]]) -> Diversity:
    """distinct-1/2/3 and self-BLEU averaged over groups, and the duplicate share."""
    distinct_n = [_mean([distinct(g, n) for g in groups.values()]) for n in (1, 2, 3)]
    return Diversity(
        len(groups),
        *distinct_n,
        self_bleu=_mean([self_bleu(g) for g in groups.values()]),
        duplicates=duplicate_share(groups.values()),
    )


def truncate_words(text: str, n: int) -> str:
    """The first ``n`` words of a text (for comparing real text at generated length)."""
    return " ".join(words(text)[:n])
