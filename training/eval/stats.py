"""Small statistics the report needs: confidence intervals and significance against a floor."""

from __future__ import annotations

import math

from scipy.stats import norm


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval for a proportion (sensible at small n and near 0 or 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def above(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """One-sided p-value that proportion a exceeds proportion b (two-proportion z-test)."""
    if not n_a or not n_b:
        return float("nan")
    pooled = (hits_a + hits_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.5 if hits_a / n_a == hits_b / n_b else (0.0 if hits_a / n_a > hits_b / n_b else 1.0)
    return float(norm.sf((hits_a / n_a - hits_b / n_b) / se))
