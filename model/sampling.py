"""Per-request sampling parameters and the logits processing they imply (one row at a time)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from data.errors import ConfigError


@dataclass(frozen=True)
class Sampling:
    """How one request is sampled. ``seed`` makes it reproducible; ``guidance`` 1.0 is plain sampling."""

    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    max_new_tokens: int = 200
    seed: int | None = None
    guidance: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if not self.repetition_penalty >= 1:
            raise ConfigError(f"repetition_penalty must be >= 1, got {self.repetition_penalty}")
        if self.max_new_tokens <= 0:
            raise ConfigError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if not self.guidance >= 0:
            raise ConfigError(f"guidance must be >= 0, got {self.guidance}")

    def with_seed(self, seed: int) -> Sampling:
        """A copy with this seed."""
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


def process(logits: torch.Tensor, seen: torch.Tensor, s: Sampling) -> torch.Tensor:
    """Turn one row of logits (V,) into sampling probabilities (V,) under ``s``.

    ``seen`` holds the ids already in the context, penalised CTRL-style (divide positive logits,
    multiply negative ones) so loops are discouraged.
    """
    logits = logits.float().clone()
    if s.repetition_penalty != 1.0 and seen.numel():
        prev = logits[seen]
        logits[seen] = torch.where(prev > 0, prev / s.repetition_penalty, prev * s.repetition_penalty)
    if s.temperature == 0:
        probs = torch.zeros_like(logits)
        probs[int(torch.argmax(logits))] = 1.0
        return probs
    logits = logits / s.temperature
    if s.top_k and s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        drop = cum - torch.softmax(sorted_logits, dim=-1) >= s.top_p
        logits[order[drop]] = float("-inf")
    return torch.softmax(logits, dim=-1)


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance on logits (..., V): ``uncond + scale * (cond - uncond)``.

    Scale 1 gives ``cond``, 0 gives ``uncond``, above 1 moves further the way the tags point. Softmax
    ignores a constant shift per row, so mixing raw logits equals mixing log-probabilities. A tensor
    ``scale`` broadcasts, e.g. (rows, 1) for one scale per row.
    """
    return uncond + scale * (cond - uncond)
