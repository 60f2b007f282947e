"""The evaluation stage's settings (``linernotes eval`` flags), saved inside every report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import check_choices, flag
from linernotes.model.card import WEIGHT_PRECISIONS

# What judges read (training/eval/judges.py): word and character n-grams; or character n-grams alone, to
# grade output that the checkpoint's ranker (word unigrams, model/rank.py) chose, by features that did not.
FEATURES = ("words+chars", "chars")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how hard to look."""

    checkpoint: str = field(
        metadata=flag("checkpoint directory (or use --compare A B)", positional=True, nargs="?")
    )
    data: str = field(metadata=flag("prepared directory (train.jsonl for judges, test.jsonl held out)"))
    out: str = field(metadata=flag("report directory"))
    samples: int = field(default=8, metadata=flag("generations per condition"))
    guidance: tuple[float, ...] = field(
        default=(), metadata=flag("guidance scales to compare (default: 1.0 and the card's)")
    )
    contrast: float | None = field(
        default=None,
        metadata=flag("contrast weight for every kind, at every scale (default: the card's)"),
    )
    repetition_penalty: float | None = field(
        default=None,
        metadata=flag("repetition penalty for every kind (default: the card's for each kind)"),
    )
    max_values: int = field(
        default=10, metadata=flag("genres/artists judged: those with the most held-out examples")
    )
    max_parts: int = field(default=4, metadata=flag("song parts judged, chosen the same way"))
    kinds: tuple[str, ...] = field(
        default=(), metadata=flag("kinds generated and judged (default: every kind the checkpoint knows)")
    )
    max_new_tokens: int | None = field(
        default=None, metadata=flag("per generation (default: the card's sampling)")
    )
    candidates: int = field(
        default=1,
        metadata=flag(
            "drafts per generation, the checkpoint's ranker keeping the most on-tag (as ranked warm-up does)"
        ),
    )
    judges: str = field(
        default="words+chars",
        metadata=flag(
            "what the judges read; chars: character n-grams only, to grade --candidates by features the ranker "
            "(word unigrams) does not use",
            choices=FEATURES,
        ),
    )
    tag_id_examples: int = field(default=200, metadata=flag("real examples for tag-ID"))
    tag_id_tokens: int = field(default=96, metadata=flag("body tokens each tag-ID candidate scores"))
    batch_size: int = field(default=16, metadata=flag("sequences per forward pass when scoring"))
    seed: int = field(default=1234, metadata=flag("first sampling seed"))
    precision: str = field(
        default="auto", metadata=flag("weights as loaded", choices=["auto", *WEIGHT_PRECISIONS])
    )
    device: str = field(default="auto", metadata=flag("cpu, cuda, ... (auto: a GPU when there is one)"))
    sweep: str | None = field(
        default=None, metadata=flag("a `linernotes sweep` directory: plot loss against dataset size")
    )

    def __post_init__(self) -> None:
        check_choices(self)
        names = (
            "samples",
            "candidates",
            "max_values",
            "max_parts",
            "tag_id_examples",
            "tag_id_tokens",
            "batch_size",
        )
        for name in names:
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if min(self.max_values, self.max_parts) < 2:
            raise ConfigError("--max-values and --max-parts must be at least 2")
        if any(not s >= 0 for s in self.guidance):
            raise ConfigError(f"--guidance scales must be >= 0, got {list(self.guidance)}")
        if self.contrast is not None and not self.contrast >= 0:
            raise ConfigError(f"--contrast must be >= 0, got {self.contrast}")
        if self.repetition_penalty is not None and not self.repetition_penalty >= 1:
            raise ConfigError(f"--repetition-penalty must be >= 1 (1: off), got {self.repetition_penalty}")

    def wants(self, kind: str) -> bool:
        """Whether ``kind`` is generated and judged (``--kinds``; none given: every kind)."""
        return not self.kinds or kind in self.kinds

    def limit(self, tag: str) -> int:
        """How many values of ``tag`` are judged and ranked."""
        return self.max_parts if tag == "part" else self.max_values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)
