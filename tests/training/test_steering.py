"""The sampling defaults a card carries: one value or one per kind, checked, and read back as exported."""

from __future__ import annotations

import pytest

from linernotes.common.errors import ConfigError
from linernotes.model.card import Card
from linernotes.model.config import Sampling, card_sampling
from linernotes.training.steering import Steering

KINDS = ["review", "product", "lyrics"]


def card_with(generation: dict) -> Card:
    tags = {k: {"examples": 10} for k in KINDS}
    return Card("m", "b", "fp32", {}, {}, tags, generation=generation)


def test_per_kind_settings_survive_the_card_and_come_back_as_exported() -> None:
    steering = Steering(
        guidance={"review": 3.0, "product": 2.0},
        contrast={"review": 1.0, "lyrics": 0.5},
        candidates={"review": 4},
        repetition_penalty={"lyrics": 1.02},
    )
    generation = steering.generation(KINDS)
    # Plain values are left out: a kind not named samples as every card did before the setting existed.
    assert generation["repetition_penalty_by_kind"] == {"lyrics": 1.02}
    assert generation["candidates_by_kind"] == {"review": 4}
    card = card_with(generation)
    assert [card.guidance(k) for k in KINDS] == [3.0, 2.0, 1.0]
    assert [card.repetition_penalty(k) for k in KINDS] == [1.1, 1.1, 1.02]
    assert Steering.of(card).generation(KINDS) == generation
    # Every stage samples a kind from the card unless told otherwise.
    lyrics = card_sampling(card, "lyrics")
    assert (lyrics.guidance, lyrics.contrast, lyrics.repetition_penalty) == (1.0, 0.5, 1.02)
    assert card_sampling(card, "lyrics", repetition_penalty=1.3).repetition_penalty == 1.3
    assert card_sampling(card, "review").repetition_penalty == Sampling().repetition_penalty


def test_one_value_is_every_kinds_and_a_kind_without_a_contrast_tag_gets_none() -> None:
    generation = Steering(guidance=2.0, contrast=1.0, repetition_penalty=1.05).generation(
        ["review", "product"]
    )
    assert generation["guidance"] == 2.0 and generation["sampling"]["guidance"] == 2.0
    assert generation["contrast_by_kind"] == {"review": 1.0, "product": 1.0}
    assert generation["repetition_penalty_by_kind"] == {"review": 1.05, "product": 1.05}
    assert "candidates_by_kind" not in generation


def test_a_card_from_before_penalties_per_kind_reads_as_it_sampled() -> None:
    old = card_with({"guidance": 2.0, "sampling": {"repetition_penalty": 1.2}})
    assert old.repetition_penalty("lyrics") == 1.2
    assert card_with({}).repetition_penalty("lyrics") is None
    assert card_sampling(card_with({}), "lyrics").repetition_penalty == Sampling().repetition_penalty


@pytest.mark.parametrize(
    ("steering", "said"),
    [
        (Steering(repetition_penalty=0.9), "--repetition-penalty must be a number >= 1 (1: off), got 0.9"),
        (Steering(candidates={"review": 2.5}), "--candidates must be a whole number >= 1"),
        (Steering(contrast=float("nan")), "--contrast must be a number >= 0"),
        (Steering(guidance={"poem": 2.0}), "guidance for 'poem': kinds are review, product, lyrics"),
    ],
)
def test_bad_settings_are_refused_by_name(steering: Steering, said: str) -> None:
    with pytest.raises(ConfigError) as err:
        steering.generation(KINDS)
    assert said in str(err.value)
