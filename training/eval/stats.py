"""Small statistics the report needs: confidence intervals and significance against a floor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, norm, rankdata

NAN = float("nan")


@dataclass(frozen=True)
class Proportion:
    """How often something held (``hits`` of ``n``), with its Wilson 95% interval."""

    n: int
    hits: int
    accuracy: float
    ci95: tuple[float, float]


def proportion(hits: int, n: int) -> Proportion:
    """``hits`` of ``n`` as a Proportion (accuracy NaN when there was nothing to count)."""
    return Proportion(n, hits, hits / n if n else NAN, wilson(hits, n))


def wilson(hits: int, n: int) -> tuple[float, float]:
    """The Wilson 95% interval for a proportion (sensible at small n and near 0 or 1)."""
    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return (float(ci.low), float(ci.high))


def above(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """One-sided p-value that proportion a exceeds proportion b (two-proportion z-test)."""
    if not n_a or not n_b:
        return NAN
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.5 if hits_a / n_a == hits_b / n_b else (0.0 if hits_a / n_a > hits_b / n_b else 1.0)
    return float(norm.sf((hits_a / n_a - hits_b / n_b) / se))


def spearman_ci(x: np.ndarray, y: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap 95% interval for the Spearman correlation of paired ``x`` and ``y`` (n,).

    Pairs are resampled with replacement and re-ranked each round (ties share ranks, as in ``spearmanr``);
    a round in which either side is constant has no correlation and is left out. Seeded: the same data
    give the same interval.
    """
    picks = np.random.default_rng(seed).integers(0, len(x), size=(rounds, len(x)))  # (rounds, n)
    rx, ry = rankdata(x[picks], axis=1), rankdata(y[picks], axis=1)  # (rounds, n) each
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    spread = np.sqrt((rx**2).sum(1) * (ry**2).sum(1))  # (rounds,)
    varied = spread > 0
    rho = (rx * ry).sum(1)[varied] / spread[varied]
    if not len(rho):
        return (NAN, NAN)
    low, high = np.percentile(rho, [2.5, 97.5])
    return (float(low), float(high))
