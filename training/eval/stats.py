"""Small statistics the report needs: confidence intervals and significance against a floor."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import binomtest, norm

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
