"""Cache keys: which stored generations can answer which request.

Reviews are cached per genre and score rounded to ``score_bucket`` (the embed still shows the score
asked for); product reviews per rating; lyrics per part and artist. A request carrying the user's own
words (a lyrics seed line, a product headline) is *private*: always generated, never served to anyone
else from the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linernotes.model.card import Card


@dataclass(frozen=True)
class Key:
    """A cache key and the tags a generation for it is made with."""

    key: str
    kind: str
    tags: dict[str, Any]
    private: bool = False  # holds the user's own words: generated for them alone, never taken from the cache


def bucket(score: float, step: float) -> float:
    """``score`` rounded to the nearest multiple of ``step`` (one decimal)."""
    return round(round(score / step) * step, 1)


def key_for(kind: str, tags: dict[str, Any], step: float, seed_line: str | None = None) -> Key:
    """The cache key of a (validated) request."""
    if kind == "review":
        score = bucket(tags["score"], step)
        return Key(f"review|{tags['genre']}|{score:.1f}", kind, {"genre": tags["genre"], "score": score})
    if kind == "lyrics":
        artist = tags.get("artist")
        cached = {"part": tags["part"], **({"artist": artist} if artist else {})}
        return Key(f"lyrics|{tags['part']}|{artist or ''}", kind, cached, private=bool(seed_line))
    if kind == "product":
        # The headline is free text: with one the tags are the request's own, so the key only counts demand.
        headline = tags.get("headline")
        cached = {"rating": int(tags["rating"]), **({"headline": headline} if headline else {})}
        return Key(f"product|{int(tags['rating'])}", kind, cached, private=bool(headline))
    values = "|".join(str(v) for v in tags.values())
    return Key(f"{kind}|{values}", kind, dict(tags), private=bool(seed_line))


def parse_key(key: str) -> Key:
    """Inverse of ``key_for`` for cacheable keys (those found in the demand table)."""
    kind, *parts = key.split("|")
    if kind == "review":
        return Key(key, kind, {"genre": parts[0], "score": float(parts[1])})
    if kind == "lyrics":
        return Key(key, kind, {"part": parts[0], **({"artist": parts[1]} if parts[1] else {})})
    if kind == "product":
        return Key(key, kind, {"rating": int(parts[0])})
    raise ValueError(f"not a cache key: {key!r}")


TYPICAL_SCORE = 7.5  # review scores cluster here (Pitchfork's mean is about 7): warm these first


def score_buckets(card: Card, step: float) -> list[float]:
    """The cache's score buckets covering the card's trained score range, lowest first."""
    lo, hi = card.score_range()
    n_lo, n_hi = round(bucket(lo, step) / step), round(bucket(hi, step) / step)
    return [round(n * step, 1) for n in range(n_lo, n_hi + 1) if lo - step / 2 <= n * step <= hi + step / 2]


def base_keys(card: Card, step: float) -> list[Key]:
    """Keys kept warm for every model, most likely first: each part (any artist), each product rating
    the model knows (most trained first), then each genre at each score bucket, scores ordered
    outward from the typical one."""
    keys: list[Key] = []
    if "lyrics" in card.tags:
        keys += [key_for("lyrics", {"part": p}, step) for p in card.values("lyrics", "part")]
    if "product" in card.tags:
        keys += [key_for("product", {"rating": int(r)}, step) for r in card.values("product", "rating")]
    if "review" in card.tags:
        scores = sorted(score_buckets(card, step), key=lambda s: (abs(s - TYPICAL_SCORE), -s))
        genres = card.values("review", "genre")
        keys += [key_for("review", {"genre": g, "score": s}, step) for s in scores for g in genres]
    return keys
