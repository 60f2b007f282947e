"""How much generated text reproduces training text, measured before any copy guard.

Words are the unit (as in the copy guard): a text "copies" when it contains a run of ``run`` or more
consecutive words that also occur consecutively in training. For the worst offenders the report
shows the training passage they match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linernotes.model.copyguard import CopyGuard, N, ngram_hashes, words

NAN = float("nan")


@dataclass(frozen=True)
class Overlap:
    """The distribution over texts of the share of their 8-grams found in training text."""

    mean: float
    p50: float
    p90: float
    max: float
    histogram: list[int]  # ten bins over [0, 1]


@dataclass(frozen=True)
class CopiedText:
    """One of the texts closest to training text, beside the training passage it matches."""

    text: str
    longest_run: int
    share: float
    match: str | None


@dataclass(frozen=True)
class Copying:
    """How much generated text reproduces training text, before any copy guard."""

    n: int
    run: int  # words in a row that count as a copy
    copy_rate: float
    copied: int
    overlap_8gram: Overlap
    worst: list[CopiedText]


def _overlap(shares: np.ndarray) -> Overlap:
    if not len(shares):
        return Overlap(NAN, NAN, NAN, NAN, [])
    return Overlap(
        float(shares.mean()),
        float(np.quantile(shares, 0.5)),
        float(np.quantile(shares, 0.9)),
        float(shares.max()),
        np.histogram(shares, bins=10, range=(0, 1))[0].tolist(),
    )


def copying(texts: list[str], guard: CopyGuard, train_texts: list[str], worst: int = 3) -> Copying:
    """Copy rate, the 8-gram overlap distribution and the ``worst`` texts with their sources."""
    checks = [guard.check(t) for t in texts]
    n = len(texts)
    copied = [i for i, c in enumerate(checks) if c.longest_run >= guard.run]
    ranked = sorted(range(n), key=lambda i: (checks[i].longest_run, checks[i].share), reverse=True)
    return Copying(
        n=n,
        run=guard.run,
        copy_rate=len(copied) / n if n else NAN,
        copied=len(copied),
        overlap_8gram=_overlap(np.array([c.share for c in checks])),
        worst=[
            CopiedText(
                texts[i], checks[i].longest_run, checks[i].share, source_passage(texts[i], train_texts)
            )
            for i in ranked[:worst]
            if checks[i].longest_run > 0
        ],
    )


def source_passage(text: str, train_texts: list[str]) -> str | None:
    """The training words that share the longest run of 8-grams with ``text`` (None if none)."""
    generated = ngram_hashes(text)
    if not len(generated):
        return None
    best, best_span = 0, None
    for train in train_texts:
        h = ngram_hashes(train)
        if not len(h):
            continue
        hit = np.isin(h, generated)
        start, length = _longest_run(hit)
        if length > best:
            best, best_span = length, (train, start, length)
    if best_span is None:
        return None
    train, start, length = best_span
    return " ".join(words(train)[start : start + length + N - 1])


def _longest_run(hit: np.ndarray) -> tuple[int, int]:
    best_start = best = current = 0
    for i, h in enumerate(hit.tolist()):
        current = current + 1 if h else 0
        if current > best:
            best, best_start = current, i - current + 1
    return best_start, best
