"""The operator's figures: requests per key over time, cache depth per key, approval per tag value, and what
each model cost (training, from its card and the server models' records; generation, as the bot recorded it).

Only ``/stats`` shows these, behind the operator's token. Nothing here names a server: a server's model is
listed by its model id.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.bot.cache import parse_key
from linernotes.bot.storage import DOWN, HOUR, UP, Database
from linernotes.common.errors import CheckpointError
from linernotes.model.card import Card, read_card

HOURS = 7 * 24  # how far back requests are shown
TRAINING = ("steps", "tokens", "seconds", "cpu_s", "gpu_s")  # a model's training cost, as the table shows it
GENERATION = ("texts", "failed", "tokens", "seconds")


@dataclass
class Figures:
    """Everything the operator view shows."""

    requests: list[tuple[int, str, str, int]]  # (hour, source, key, requests), oldest first
    depth: dict[str, int]  # never-shown generations per key of the model served
    approval: list[tuple[str, str, str, int, int]]  # (kind, tag, value, up, down)
    costs: dict[str, dict[str, Any]] = field(default_factory=dict)  # model id -> its figures
    showings: dict[str, int] = field(default_factory=dict)  # via -> showings

    def key_totals(self) -> list[tuple[str, int, int]]:
        """(key, Discord requests, web requests) over the period, most asked first."""
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for _, source, key, n in self.requests:
            totals[key][source == "web"] += n
        return sorted(((k, d, w) for k, (d, w) in totals.items()), key=lambda t: (-(t[1] + t[2]), t[0]))


async def figures(db: Database, model_id: str | None, card: Card | None) -> Figures:
    """The operator's figures now (``model_id``, ``card``: the model served, when known)."""
    since = int(time.time() // HOUR) - HOURS
    requests = await db.fetch(
        "SELECT hour, source, cache_key, requests FROM request_counts WHERE hour > ? ORDER BY hour", (since,)
    )
    showings = await db.fetch("SELECT via, COUNT(*) FROM deliveries GROUP BY via")
    return Figures(
        [tuple(r) for r in requests],  # type: ignore[misc]
        await db.depth(model_id) if model_id else {},
        await approval(db),
        await costs(db, card),
        {r[0]: r[1] for r in showings},
    )


async def approval(db: Database) -> list[tuple[str, str, str, int, int]]:
    """Approvals and rejections per tag value, tags as the cache keys them (scores by bucket)."""
    rows = await db.fetch(
        f"SELECT g.cache_key, {UP}, {DOWN} FROM ratings r "
        "JOIN generations g ON g.id = r.generation_id GROUP BY g.cache_key"
    )
    votes: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for key, up, down in rows:
        try:
            parsed = parse_key(key)
        except (ValueError, IndexError):
            continue  # a private request's key: its tags are someone's own words
        for tag, value in parsed.tags.items():
            shown = f"{value:.1f}" if isinstance(value, float) else str(value)
            votes[(parsed.kind, tag, shown)][0] += up
            votes[(parsed.kind, tag, shown)][1] += down
    return sorted((*k, up, down) for k, (up, down) in votes.items())


async def costs(db: Database, card: Card | None) -> dict[str, dict[str, Any]]:
    """Per model id: what training it cost (``training``) and what generating with it cost (``generation``)."""
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    if card is not None:
        found[card.model_id] |= {"role": "the bot's model", "training": trained(card.metrics)}
    servers = await db.fetch(
        "SELECT model_id, path, report FROM server_models WHERE model_id IS NOT NULL AND model_id != base_model_id"
    )
    for model_id, path, report in servers:
        found[model_id] |= {"role": "a server's model", "training": await _server_training(path, report)}
    for row in await db.fetch(f"SELECT model_id, {', '.join(GENERATION)} FROM generation_costs"):
        found[row[0]]["generation"] = {name: row[name] for name in GENERATION}
        found[row[0]].setdefault("role", "an earlier model")
    return dict(found)


def trained(metrics: dict[str, Any]) -> dict[str, Any]:
    """A card's training figures under the table's names (older cards lack the times)."""
    return {
        "steps": metrics.get("steps"),
        "tokens": metrics.get("tokens"),
        "seconds": metrics.get("elapsed_s"),
        "cpu_s": metrics.get("cpu_s"),
        "gpu_s": metrics.get("gpu_s"),
    }


async def _server_training(path: str, report: str) -> dict[str, Any]:
    """A server model's training figures: its record's (steps, seconds), then its adapter card's."""
    recorded = (json.loads(report) or {}).get("training") or {}
    try:
        card = await asyncio.to_thread(read_card, Path(path) / "checkpoint")
    except CheckpointError:
        card = None  # its files went (a failed job) or never were: the record alone
    figures = trained(card.metrics) if card else {}
    return {
        name: recorded.get(name) if recorded.get(name) is not None else figures.get(name) for name in TRAINING
    }
