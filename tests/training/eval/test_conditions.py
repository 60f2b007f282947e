"""Sampling every condition as its kind's settings say: the floor drops the tags and the contrast only."""

from __future__ import annotations

from pathlib import Path

from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator
from linernotes.training.eval.conditions import Condition, sample


def test_each_kind_samples_with_its_own_settings_and_the_floor_keeps_all_but_tags_and_contrast(
    tiny_fp32: Path,
) -> None:
    gen = Generator.load(tiny_fp32, GenerateConfig(device="cpu", min_chars=1, max_attempts=1))
    conds = [
        Condition("lyrics", {"part": "chorus"}, ("part",)),
        Condition("review", {"genre": "Metal", "score": 2.0}, ("genre", "score")),
    ]
    bases = {
        "lyrics": Sampling(repetition_penalty=1.02, contrast=1.0, max_new_tokens=4),
        "review": Sampling(repetition_penalty=1.3, max_new_tokens=4),
    }
    guided = sample(gen, conds, 2, bases, 2.0, seed=10)
    floor = sample(gen, conds, 2, bases, None, seed=10)
    asked = [(s.condition.kind, s.result.request.sampling, s.result.request.tags) for s in guided]
    assert [(k, p.repetition_penalty, p.contrast, p.guidance) for k, p, _ in asked] == [
        ("lyrics", 1.02, 1.0, 2.0),
        ("lyrics", 1.02, 1.0, 2.0),
        ("review", 1.3, 0.0, 2.0),
        ("review", 1.3, 0.0, 2.0),
    ]
    assert [p.seed for _, p, _ in asked] == [10, 11, 1010, 1011]
    # The floor: the same seeds and penalty, no tags, no guidance, nothing to contrast with.
    plain = [(s.result.request.sampling, s.result.request.tags) for s in floor]
    assert [(p.seed, p.repetition_penalty, p.contrast, p.guidance, t) for p, t in plain] == [
        (10, 1.02, 0.0, 1.0, {}),
        (11, 1.02, 0.0, 1.0, {}),
        (1010, 1.3, 0.0, 1.0, {}),
        (1011, 1.3, 0.0, 1.0, {}),
    ]
