"""Conditioned samples during training: one per representative tag set, written to the run log."""

from __future__ import annotations

from typing import Any

from linernotes.model.backends import LocalBackend
from linernotes.model.card import Card
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request


def representative(tags: dict[str, dict[str, Any]], limit: int = 4) -> list[tuple[str, dict[str, Any]]]:
    """Tag sets that show whether conditioning works: each top genre low and high, each top part, ..."""
    out: list[tuple[str, dict[str, Any]]] = []
    review = tags.get("review")
    if review:
        lo, hi = review.get("score_range", [0.0, 10.0])
        for genre in list(review.get("genre", {}))[:limit]:
            for score in (max(lo, 2.0), min(hi, 9.0)):
                out.append(("review", {"genre": genre, "score": score}))
    lyrics = tags.get("lyrics")
    if lyrics:
        out.extend(("lyrics", {"part": part}) for part in list(lyrics.get("part", {}))[:limit])
    product = tags.get("product")
    if product:
        ratings = sorted({int(r) for r in product.get("rating", {})})
        out.extend(("product", {"rating": r}) for r in dict.fromkeys([ratings[0], ratings[-1]]))
    return out


def samples(
    model, tokenizer, tags: dict[str, dict[str, Any]], max_tokens: int, seed: int, rendering: str
) -> list[dict[str, Any]]:
    """Generate one sample per representative tag set with the model as it is now (prompted in ``rendering``)."""
    card = Card(
        model_id="training",
        base_model="",
        precision="fp32",
        architecture={},
        tokenizer={},
        tags=tags,
        rendering=rendering,
    )
    gen = Generator(LocalBackend(model, tokenizer), card, None, GenerateConfig(max_attempts=1, min_chars=0))
    sampling = Sampling(max_new_tokens=max_tokens, seed=seed)
    requests = [Request(kind, t, sampling=sampling) for kind, t in representative(tags)]
    was_training = model.training
    model.eval()
    try:
        results = gen.generate(requests)
    finally:
        model.train(was_training)
    return [{"kind": r.request.kind, "tags": r.request.tags, "text": r.text, "stop": r.stop} for r in results]
