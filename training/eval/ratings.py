"""Human ratings from the bot: approval per tag value, with counts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from linernotes.training.eval.likelihood import REPORTED, band


@dataclass(frozen=True)
class Approval:
    """👍 and 👎 on the generations of one tag value (tag "" and value "all": a whole kind)."""

    kind: str
    tag: str
    value: str
    generations: int
    up: int
    down: int
    approval: float  # up / (up + down); NaN with no votes


def approval(rated: list[dict[str, Any]]) -> list[Approval]:
    """Rows of (kind, tag, value, generations, up, down, approval) from rated generations.

    ``rated`` holds dicts with ``kind``, ``tags``, ``up`` and ``down`` (the bot's feedback export).
    """
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rated:
        up, down = int(r.get("up") or 0), int(r.get("down") or 0)
        keys = [(r["kind"], "", "all")] + [
            (r["kind"], tag, band(r["kind"], tag, v)) for tag, v in r["tags"].items() if tag in REPORTED
        ]
        for key in keys:
            t = totals[key]
            t[0] += 1
            t[1] += up
            t[2] += down
    rows = [
        Approval(k, tag, v, n, up, down, up / (up + down) if up + down else float("nan"))
        for (k, tag, v), (n, up, down) in totals.items()
    ]
    return sorted(rows, key=lambda r: (r.kind, r.tag, -r.generations))
