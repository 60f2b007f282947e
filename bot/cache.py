"""Cache keys: which stored generations can answer which request.

Reviews are cached per genre and score rounded to ``score_bucket`` (the embed still shows the score
asked for); lyrics per part and artist. Lyrics with a seed line are never cached: they continue the
user's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model.card import Card


@dataclass(frozen=True)
class Key:
    """A cache key and the tags a generation for it is made with."""

    key: str
    kind: str
    tags: dict[str, Any]


def bucket(score: float, step: float) -> float:
    """``score`` rounded to the nearest multiple of ``step`` (one decimal)."""
    return round(round(score / step) * step, 1)


def key_for(kind: str, tags: dict[str, Any], step: float) -> Key:
    """The cache key of a (validated) request."""
    if kind == "review":
        score = bucket(tags["score"], step)
        return Key(f"review|{tags['genre']}|{score:.1f}", kind, {"genre": tags["genre"], "score": score})
    if kind == "lyrics":
        artist = tags.get("artist")
        cached = {"part": tags["part"], **({"artist": artist} if artist else {})}
        return Key(f"lyrics|{tags['part']}|{artist or ''}", kind, cached)
    values = "|".join(str(v) for v in tags.values())
    return Key(f"{kind}|{values}", kind, dict(tags))


def parse_key(key: str) -> Key:
    """Inverse of ``key_for`` (for keys found in the demand table)."""
    kind, *parts = key.split("|")
    if kind == "review":
        return Key(key, kind, {"genre": parts[0], "score": float(parts[1])})
    if kind == "lyrics":
        return Key(key, kind, {"part": parts[0], **({"artist": parts[1]} if parts[1] else {})})
    raise ValueError(f"not a cache key: {key!r}")


TYPICAL_SCORE = 7.5  # review scores cluster here (Pitchfork's mean is about 7): warm these first


def score_buckets(card: Card, step: float) -> list[float]:
    """The cache's score buckets covering the card's trained score range, lowest first."""
    lo, hi = card.score_range()
    n_lo, n_hi = round(bucket(lo, step) / step), round(bucket(hi, step) / step)
    return [round(n * step, 1) for n in range(n_lo, n_hi + 1) if lo - step / 2 <= n * step <= hi + step / 2]


def base_keys(card: Card, step: float) -> list[Key]:
    """Keys kept warm for every model, most likely first: each part (any artist), then each genre at
    each score bucket, scores ordered outward from the typical one."""
    keys: list[Key] = []
    if "lyrics" in card.tags:
        keys += [key_for("lyrics", {"part": p}, step) for p in card.values("lyrics", "part")]
    if "review" in card.tags:
        scores = sorted(score_buckets(card, step), key=lambda s: (abs(s - TYPICAL_SCORE), -s))
        genres = card.values("review", "genre")
        keys += [key_for("review", {"genre": g, "score": s}, step) for s in scores for g in genres]
    return keys
