"""The generation stage's typed configs: how one request is sampled, and how the generator runs.

Torch-free, so the command line can derive its flags from them (``common.flags``) without loading the
model stack.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import flag
from linernotes.model.card import WEIGHT_PRECISIONS, Card
from linernotes.model.postprocess import EMBED_LIMIT

BACKENDS = ("local", "openai")
LOAD_PRECISIONS = ("auto", *WEIGHT_PRECISIONS)  # auto: as the checkpoint stores them


@dataclass(frozen=True)
class Sampling:
    """How one request is sampled. ``seed`` makes it reproducible; ``guidance`` 1.0 is plain sampling."""

    temperature: float = field(default=0.9, metadata=flag("sampling temperature (0: greedy)"))
    top_k: int = field(default=50, metadata=flag("sample from the k likeliest tokens (0: all)"))
    top_p: float = field(default=0.95, metadata=flag("nucleus sampling: the smallest set holding this mass"))
    # Not given on a command line: the card's for the kind (lyrics may repeat their hooks more freely).
    repetition_penalty: float = field(
        default=1.1,
        metadata=flag(
            "CTRL-style penalty on tokens already seen (1: off); default: the checkpoint card's", default=None
        ),
    )
    max_new_tokens: int = field(default=200, metadata=flag("tokens to generate at most"))
    seed: int | None = field(default=None, metadata=flag("random seed: the same seed gives the same text"))
    # Not given on a command line: the checkpoint card's scale (its default None says so to argparse).
    guidance: float = field(
        default=1.0,
        metadata=flag("classifier-free guidance scale; default: the checkpoint card's", default=None),
    )
    contrast: float = field(
        default=0.0,
        metadata=flag(
            "extra guidance away from the mirrored score or rating, a review's other genre and a song's "
            "other part (0: off); default: the checkpoint card's",
            default=None,
        ),
    )

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
        if not self.contrast >= 0:
            raise ConfigError(f"contrast must be >= 0, got {self.contrast}")

    def with_seed(self, seed: int) -> Sampling:
        """A copy with this seed."""
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


def card_sampling(
    card: Card,
    kind: str,
    base: Sampling | None = None,
    guidance: float | None = None,
    contrast: float | None = None,
    repetition_penalty: float | None = None,
) -> Sampling:
    """``base`` (default: the defaults) at ``card``'s settings for ``kind``: its guidance scale, its
    contrast weight and its repetition penalty (where the card names one), each unless given."""
    base = base or Sampling()
    penalty = repetition_penalty if repetition_penalty is not None else card.repetition_penalty(kind)
    return replace(
        base,
        guidance=card.guidance(kind) if guidance is None else guidance,
        contrast=card.contrast(kind) if contrast is None else contrast,
        repetition_penalty=base.repetition_penalty if penalty is None else penalty,
    )


@dataclass(frozen=True)
class GenerateConfig:
    """How the generator runs (CLI flags, bot settings)."""

    precision: str = field(
        default="auto",
        metadata=flag(
            "weights as loaded (auto: as stored; int8 needs bitsandbytes)", choices=LOAD_PRECISIONS
        ),
    )
    device: str = field(
        default="auto", metadata=flag("cpu, cuda, cuda:1, ... (auto: a GPU when there is one)")
    )
    backend: str = field(
        default="local",
        metadata=flag("local: this process; openai: an OpenAI-compatible server", choices=BACKENDS),
    )
    backend_url: str | None = field(
        default=None, metadata=flag("the OpenAI-compatible server, e.g. http://gpu-box:8000/v1")
    )
    backend_model: str | None = field(
        default=None, metadata=flag("the served model's name on that server; default: the card's model id")
    )
    max_batch: int = field(default=32, metadata=flag("requests decoded together at most"))
    max_attempts: int = field(default=3, metadata=flag("samples per request before it is given up"))
    copy_run: int = field(
        default=12, metadata=flag("copy guard: a run of this many training words is a copy")
    )
    copy_share: float = field(
        default=0.5, metadata=flag("copy guard: share of a text in such runs to refuse it")
    )
    min_chars: int | None = field(
        default=None, metadata=flag("shortest text worth keeping; default: per kind")
    )
    limit: int = field(
        default=EMBED_LIMIT, metadata=flag("longest text in characters (Discord's embed limit)")
    )

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be local or openai, got {self.backend!r}")
        if self.backend == "openai" and not self.backend_url:
            raise ConfigError("the openai backend needs a URL (--backend-url)")
        if self.max_batch <= 0 or self.max_attempts <= 0:
            raise ConfigError("max_batch and max_attempts must be positive")
