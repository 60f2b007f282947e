"""The evaluation stage's settings (``linernotes eval`` flags), saved inside every report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from data.errors import ConfigError


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how hard to look."""

    checkpoint: str
    data: str  # a prepared directory with train.jsonl and test.jsonl
    out: str
    samples: int = 8  # generations per condition
    guidance: tuple[float, ...] = ()  # scales to compare; empty: 1.0 and the card's default
    max_values: int = 10  # tag-ID and judges look at this many values of a tag (most held-out examples)
    max_parts: int = 4  # ... and of song parts: the main ones (verse, chorus, pre-chorus, bridge)
    max_new_tokens: int | None = None  # None: the card's sampling default
    tag_id_examples: int = 200  # real test examples scored under every candidate value
    tag_id_tokens: int = 96  # body tokens each candidate scores
    batch_size: int = 16
    seed: int = 1234
    precision: str = "auto"
    device: str = "auto"
    sweep: str | None = None  # a `linernotes train --sweep` directory, for loss against dataset size

    def __post_init__(self) -> None:
        for name in ("samples", "max_values", "max_parts", "tag_id_examples", "tag_id_tokens", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if min(self.max_values, self.max_parts) < 2:
            raise ConfigError("--max-values and --max-parts must be at least 2")
        if any(not s >= 0 for s in self.guidance):
            raise ConfigError(f"--guidance scales must be >= 0, got {list(self.guidance)}")

    def limit(self, tag: str) -> int:
        """How many values of ``tag`` are judged and ranked."""
        return self.max_parts if tag == "part" else self.max_values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)
