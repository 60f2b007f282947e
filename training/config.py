"""The training stage's typed configuration: every flag, validated, recorded in the run and checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from data.errors import ConfigError

# Fresh GPT-2 shapes for --from-scratch: tiny for tests and the demo, small for a real CPU run.
SCRATCH = {
    "tiny": {"n_layer": 2, "n_embd": 128, "n_head": 4, "vocab_size": 4096},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "vocab_size": 8192},
}


@dataclass
class TrainConfig:
    """Everything ``linernotes train`` needs; saved as ``RUN/config.json`` and in every checkpoint."""

    data: str
    out: str
    base: str = "gpt2"
    from_scratch: str | None = None  # tiny | small: fresh config + BPE tokenizer trained on the train split
    extra_data: list[str] = field(default_factory=list)  # more prepared dirs / feedback exports
    steps: int | None = None  # optimizer steps; else --epochs
    epochs: float = 1.0
    batch_size: int = 8  # blocks per micro-batch
    grad_accum: int = 1
    block_size: int = 512
    lr: float = 5e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16/fp16 on GPU, fp32 on CPU)
    gradient_checkpointing: bool = False
    seed: int = 1234
    eval_every: int = 100
    eval_batches: int | None = None  # None: the whole validation split
    save_every: int = 200
    sample_every: int = 0  # 0: no samples during training
    sample_tokens: int = 60
    patience: int = 0  # early stopping after this many evaluations without improvement; 0: off
    max_minutes: float | None = None  # stop (evaluating first) once training has run this long
    tag_dropout: float = 0.0  # share of examples rendered with the unconditioned header
    max_examples: int | None = None  # use only the first N training examples (for sweeps)
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "block_size": self.block_size,
            "eval_every": self.eval_every,
            "save_every": self.save_every,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError(f"--max-minutes must be positive, got {self.max_minutes}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be positive, got {self.lr}")
        if self.steps is not None and self.steps <= 0:
            raise ConfigError(f"--steps must be positive, got {self.steps}")
        if self.steps is None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        if self.from_scratch is not None and self.from_scratch not in SCRATCH:
            raise ConfigError(
                f"--from-scratch must be one of {', '.join(SCRATCH)}, got {self.from_scratch!r}"
            )
        if self.precision not in {"auto", "fp32", "bf16", "fp16"}:
            raise ConfigError(f"--precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if not 0 <= self.tag_dropout < 1:
            raise ConfigError(f"--tag-dropout must be in [0, 1), got {self.tag_dropout}")
        if self.block_size < 32:
            raise ConfigError(f"--block-size must be at least 32 tokens, got {self.block_size}")

    @property
    def base_name(self) -> str:
        """What the card calls the base: the hub name or path, or ``scratch:tiny``."""
        return f"scratch:{self.from_scratch}" if self.from_scratch else self.base

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)

    # Fields that may differ on --resume without changing what the run is (moved directories are fine:
    # the data itself is compared by hash).
    RESUMABLE = frozenset(
        {
            "out",
            "data",
            "extra_data",
            "steps",
            "epochs",
            "eval_every",
            "save_every",
            "sample_every",
            "patience",
            "progress",
            "resume",
            "eval_batches",
            "sample_tokens",
        }
    )
