"""The sampling defaults an export writes into a card, one value or one per kind: guidance scale, contrast
weight, warm-up's drafts per cached text and repetition penalty."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.data.format import KINDS, MIRRORED, SWAPPED
from linernotes.model.card import Card
from linernotes.model.config import Sampling

PerKind = float | Mapping[str, float]  # one value for every kind, or a value per kind

# The value of each setting that leaves sampling plain, given to a kind a per-kind mapping leaves out
# (candidates: warm-up's drafts per cached text, the ranker keeping one; the repetition penalty's plain
# value is the sampling default, which every card before per-kind penalties sampled with).
OFF = {
    "guidance": 1.0,
    "contrast": 0.0,
    "candidates": 1.0,
    "repetition_penalty": Sampling().repetition_penalty,
}
MEANING = {
    "guidance": "1.0: no guidance, 0: ignore the tags",
    "contrast": "0: off",
    "candidates": "1: no ranking",
    "repetition_penalty": "1: off",
}


@dataclass(frozen=True)
class Steering:
    """What the card tells every stage to sample each kind with, unless a request says otherwise."""

    guidance: PerKind = OFF["guidance"]
    contrast: PerKind = OFF["contrast"]
    candidates: PerKind = OFF["candidates"]
    repetition_penalty: PerKind = OFF["repetition_penalty"]

    @classmethod
    def of(cls, card: Card) -> Steering:
        """The settings ``card`` was exported with, kind by kind (to export it again with one changed)."""
        penalty = {k: card.repetition_penalty(k) for k in card.kinds}
        return cls(
            guidance={k: card.guidance(k) for k in card.kinds},
            contrast={k: card.contrast(k) for k in card.kinds},
            candidates={k: card.candidates(k) for k in card.kinds},
            repetition_penalty={k: OFF["repetition_penalty"] if v is None else v for k, v in penalty.items()},
        )

    def generation(self, kinds: list[str]) -> dict[str, Any]:
        """The card's ``generation`` block for a model trained on ``kinds``: a scale per kind and one for any
        other kind (the common scale, else 1); the other settings per kind where they are not plain."""
        by_kind = _by_kind(self.guidance, kinds)
        # Only kinds with a tag to mirror or swap (data.format MIRRORED, SWAPPED) have a contrast.
        contrasted = [k for k in kinds if k in MIRRORED or k in SWAPPED]
        contrast = _by_kind(self.contrast, contrasted, "contrast")
        drafts = _by_kind(self.candidates, kinds, "candidates")
        penalty = _by_kind(self.repetition_penalty, kinds, "repetition_penalty")
        scales = set(by_kind.values())
        default = scales.pop() if len(scales) == 1 else 1.0
        plain = OFF["repetition_penalty"]
        return {
            "sampling": Sampling(guidance=default).to_dict(),
            "guidance": default,
            "guidance_by_kind": by_kind,
            **_set("contrast_by_kind", {k: x for k, x in contrast.items() if x}),
            **_set("candidates_by_kind", {k: int(n) for k, n in drafts.items() if n > 1}),
            **_set("repetition_penalty_by_kind", {k: x for k, x in penalty.items() if x != plain}),
        }

    def with_values(self, **given: PerKind | None) -> Steering:
        """A copy with each setting given (not None) replaced."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})


def _set(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {name: values} if values else {}


def _by_kind(given: PerKind, kinds: list[str], name: str = "guidance") -> dict[str, float]:
    """Each of ``kinds``' ``name`` setting (a kind a mapping leaves out: ``OFF[name]``), checked."""
    values = given if isinstance(given, Mapping) else dict.fromkeys(kinds, given)
    unknown = sorted(set(values) - set(KINDS))
    if unknown:
        raise ConfigError(f"{name} for {unknown[0]!r}: kinds are {', '.join(KINDS)}")
    for value in values.values():
        check_setting(value, name)
    return {k: float(values.get(k, OFF[name])) for k in kinds}


def check_setting(value: float, name: str = "guidance") -> None:
    """Raise unless ``value`` is a usable default: a guidance scale or contrast weight (finite, >= 0), a
    repetition penalty (finite, >= 1) or a count of drafts (a whole number >= 1)."""
    flag = "--" + name.replace("_", "-")
    if name == "candidates":
        if not (math.isfinite(value) and value >= 1 and value == int(value)):
            raise ConfigError(f"{flag} must be a whole number >= 1 ({MEANING[name]}), got {value:g}")
    elif name == "repetition_penalty":
        if not (math.isfinite(value) and value >= 1):
            raise ConfigError(f"{flag} must be a number >= 1 ({MEANING[name]}), got {value}")
    elif not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{flag} must be a number >= 0 ({MEANING[name]}), got {value}")
