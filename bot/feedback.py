"""``linernotes feedback export``: ratings from the bot's database as data for the next training run.

Writes three JSON-lines files into the output directory (``--model ID``: one model's ratings only, e.g. a
server's own model, for retraining it):

- ``train.jsonl``: generations people approved (more 👍 than 👎), in the training format, ready for
  ``linernotes train --extra-data DIR``. Private generations are left out: lyrics continued from a
  user's seed line, product reviews written to a user's headline (someone's own words).
- ``rated.jsonl``: every rated generation with its tags, text, model id and vote counts.
- ``pairs.jsonl``: for each model and cache key with two or more rated generations, chosen/rejected pairs (the
  best-rated against each worse-rated one), for preference tuning.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from linernotes.bot.storage import existing


async def export_feedback(database: str | Path, out: str | Path, model: str | None = None) -> dict[str, int]:
    """Write the three files (only generations of model id ``model``, when given: a server's model's
    ratings are its retraining data); returns how many lines each got."""
    async with existing(database) as db:
        rated = await db.rated()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [_row(r) for r in rated if model is None or r["model_id"] == model]
    approved = [r for r in rows if r["votes"]["up"] > r["votes"]["down"] and not r["private"]]
    pairs = _pairs(rows)
    _write(out / "train.jsonl", approved)
    _write(out / "rated.jsonl", rows)
    _write(out / "pairs.jsonl", pairs)
    return {"train": len(approved), "rated": len(rows), "pairs": len(pairs)}


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": r["kind"],
        "tags": r["tags"],
        "text": r["text"],
        "source": f"feedback:{r['model_id']}#{r['id']}",
        "group": f"feedback#{r['id']}",
        "model_id": r["model_id"],
        "seed_line": r["seed_line"],
        "private": bool(r["private"]),
        "cache_key": r["cache_key"],
        "votes": {"up": int(r["up"] or 0), "down": int(r["down"] or 0)},
    }


def _pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if not r["private"]:  # a pair compares two texts of one model for one request
            by_key[f"{r['model_id']}\n{r['cache_key']}"].append(r)
    pairs = []
    for group in by_key.values():
        ranked = sorted(group, key=lambda r: r["votes"]["up"] - r["votes"]["down"], reverse=True)
        best = ranked[0]
        net = best["votes"]["up"] - best["votes"]["down"]
        for worse in ranked[1:]:
            if worse["votes"]["up"] - worse["votes"]["down"] < net:
                pairs.append(
                    {
                        "kind": best["kind"],
                        "tags": best["tags"],
                        "chosen": best["text"],
                        "rejected": worse["text"],
                        "chosen_votes": best["votes"],
                        "rejected_votes": worse["votes"],
                    }
                )
    return pairs


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
