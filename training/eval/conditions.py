"""What to ask the model for, and its answers: samples per condition, and the unconditioned floor.

A *condition* fixes the tags a judge checks: each candidate genre (at a spread of scores, which the
score judge checks), each candidate part and artist, each rating. The floor asks the same
number of times with the tags removed (the unconditioned header), so a judge's accuracy on it is
what text carrying no tag information scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from linernotes.model.card import Card
from linernotes.model.config import Sampling
from linernotes.model.generator import Generator, Request, Result


@dataclass(frozen=True)
class Condition:
    """One thing to ask for: kind and tags; ``checks`` names the tags judges score it on."""

    kind: str
    tags: dict[str, Any]
    checks: tuple[str, ...]


def score_grid(lo: float, hi: float) -> list[float]:
    """Five requested scores spread over the trained range (pans, middling, raves)."""
    points = [2.0, 4.0, 6.0, 7.5, 9.0]
    return sorted({round(min(hi, max(lo, p)), 1) for p in points})


def conditions(card: Card, candidates: dict[tuple[str, str], list[str]]) -> list[Condition]:
    """Every condition worth checking on this checkpoint: the ``candidates`` values of each tag judged
    (a tag with fewer than two values is not judged, so its one value, if any, comes from the card)."""

    def values(kind: str, tag: str) -> list[str]:
        return candidates.get((kind, tag)) or card.values(kind, tag)

    out: list[Condition] = []
    if "review" in card.tags:
        for genre in values("review", "genre"):
            for score in score_grid(*card.score_range()):
                out.append(Condition("review", {"genre": genre, "score": score}, ("genre", "score")))
    if "lyrics" in card.tags:
        parts = values("lyrics", "part")
        out += [Condition("lyrics", {"part": p}, ("part",)) for p in parts]
        artists = values("lyrics", "artist")
        if len(artists) >= 2 and parts:
            out += [Condition("lyrics", {"part": parts[0], "artist": a}, ("artist",)) for a in artists]
    if "product" in card.tags:
        ratings = sorted({int(float(r)) for r in card.tags["product"].get("rating", {})})
        out += [Condition("product", {"rating": r}, ("rating",)) for r in ratings]
    return out


@dataclass
class Sample:
    """One generation made for a condition (``guidance`` None: the unconditioned floor)."""

    condition: Condition
    guidance: float | None
    result: Result

    @property
    def text(self) -> str:
        """The finished text."""
        return self.result.text


def sample(
    gen: Generator,
    conds: list[Condition],
    n: int,
    bases: Mapping[str, Sampling],
    guidance: float | None,
    seed: int,
    candidates: int = 1,
) -> list[Sample]:
    """``n`` generations per condition, each the ranker's pick of ``candidates`` drafts, sampled as its
    kind's ``bases`` says at scale ``guidance``; None asks with the tags removed (same seeds, no contrast)."""
    requests, owners = [], []
    for c_i, cond in enumerate(conds):
        base = bases[cond.kind]
        for j in range(n):
            s = replace(
                base,
                seed=seed + 1000 * c_i + j,
                guidance=1.0 if guidance is None else guidance,
                contrast=0.0 if guidance is None else base.contrast,
            )
            tags = cond.tags if guidance is not None else {}
            requests.append(Request(cond.kind, tags, sampling=s, candidates=candidates))
            owners.append(cond)
    results = gen.generate(requests)
    return [Sample(c, guidance, r) for c, r in zip(owners, results, strict=True)]
