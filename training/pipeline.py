"""prepare -> train -> export in one call: the demo, the playground, the benchmarks and the test fixtures
all build their checkpoints here, from a named recipe plus any overrides.

A recipe is a set of ``TrainConfig`` fields. ``demo`` fine-tunes the pretrained offline base (the
model a newcomer's first ``make demo`` talks to); ``scratch-small`` is the former from-scratch GPT-2
(quality baselines); ``tiny`` is the seconds-long run the tests use; ``server`` is a Discord server's
own LoRA adapter on the bot's checkpoint (``training/server.py``).
"""

from __future__ import annotations

import itertools
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linernotes.common.errors import ConfigError
from linernotes.data.config import DataConfig
from linernotes.data.prepare import prepare
from linernotes.model.card import Card
from linernotes.training.config import TrainConfig

if TYPE_CHECKING:  # the training loop imports torch: only when a build runs
    from linernotes.training.loop import StartHook, StepHook
    from linernotes.training.steering import PerKind, Steering

log = logging.getLogger(__name__)

# LoRA on every projection of the 135M base: about 1.4x full fine-tuning's useful tokens/s on 2 CPU cores
# (r 16, same batch, measured 2026-12-02), and one pass over the bundled corpus fits the demo's time budget.
RECIPES: dict[str, dict[str, Any]] = {
    "demo": {
        "base": "smollm2-135m",
        "lora": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "epochs": 1.0,
        "batch_size": 4,
        "block_size": 256,
        "lr": 1e-3,
        "warmup_steps": 10,
        "eval_every": 40,
        "save_every": 10_000,
        # The 0 / 0.1 / 0.2 sweep (docs/quality.md "Tag-dropout sweep") could not separate the rates at 8 CPU
        # minutes: 0.15 stays, between the rate adherence favoured (0.2) and the one tag-ID favoured (0).
        "tag_dropout": 0.15,
        # No LoRA dropout: the same validation loss at 43 steps (3.680 against 3.682) for 1.40x the useful
        # tokens/s on a quiet machine (its masks were 18% of a step). The saved time goes to a shorter first
        # run, not more steps: 1.4 passes (66 steps, the same time) and lr 2e-3 each lowered validation loss
        # (3.59 against 3.67) but neither followed the tags better, nor did r 64 (3.55; the rating lost) (docs/
        # quality.md "Steps, learning rate, rank, guidance 3, a contrasting header and the chat template").
        "lora_dropout": 0.0,
    },
    "scratch-small": {
        "from_scratch": "small",
        "epochs": 12,
        "batch_size": 8,
        "block_size": 256,
        "lr": 1e-3,
        "warmup_steps": 20,
        "eval_every": 20,
        "patience": 3,
        "save_every": 10_000,
    },
    "tiny": {
        "from_scratch": "tiny",
        "steps": 40,
        "batch_size": 8,
        "block_size": 256,
        "eval_every": 20,
        "save_every": 20,
        "lr": 2e-3,
        "warmup_steps": 5,
        "progress": False,
    },
    # A server's lyrics upload (about 10 songs: ~60 sections after preparing, 3-7k tokens, 12-28 blocks of
    # 256) as an adapter over the bot's checkpoint (given per job as the base), in 1.5-4 CPU minutes: a
    # step of 4 x 256 costs 3.5-9 s on 2 cores (machines of this kind differ), and every upload meets the
    # 24-step cap (3-8 passes of 3-7 steps). bench/server_models.py: with 8 passes (24-56 steps) the
    # artist's own adapter ranked first on 76% of held-out sections; with 16 (48 steps each) on 77%, and the
    # first answer came within 188-232 s of the upload. The cap is 24, not 48, since a sweep that trained
    # each upload both ways in turn (2026-12-06) ranked 73% with either, and 24 steps took 0.49x the time
    # (197-238 s against 395-455 s on a slow machine): the saved time goes to the wait, which halves.
    # lr 1e-3 is the demo's, measured on this base at the same LoRA scale
    # (alpha / r = 2); at 48 steps lr 5e-4 ranked 76%, 2e-3 69%, and tag dropout 0.5 (the artist is the
    # same in most uploads) 74%: none beat it; LoRA dropout 0 (1.09-1.18x faster a step here) ranked 71% beside
    # the recipe's 73% in one run and 69% beside 76% in another (2026-12-07; r 16 without it also 69%), so the
    # dropout stays: on ten songs it is worth its masks. Several passes over a few songs overfit at some point: best/
    # is chosen on validation every 8 steps (a forward pass over a few blocks, ~1 s), and there is no
    # early stop, which a validation split of one or two songs would trigger on noise. r = 8 on every
    # projection of the 135M base is ~9.8 MB fp32 (the target is <= 10 MB per adapter); the job trains
    # only the top half of the base's layers, the frozen half computed once per section
    # (training/server.py ``upper_layers``: the same style in about half the time). Tag dropout as in
    # the demo, so guidance works on the adapter as on the base. Each section through SDPA's causal path and
    # the fused LoRA forward compute the same loss (tests/training/test_same_loss.py) at 1.23x the useful
    # tokens/s on the upload sample's short sections (docs/benchmarks.md "Training the 135M base's LoRA").
    "server": {
        "lora": True,
        "lora_r": 8,
        "lora_alpha": 16,
        "attention": "segments",
        "lora_forward": "fused",
        # LoRA dropout's masks from 64-bit random words (training/fused_lora.py ``keep_mask``): torch's
        # Bernoulli draws were 15% of a step on AMD CPUs; the same rate, other random numbers.
        "dropout_draws": "bits",
        "epochs": 16.0,
        "max_steps": 24,
        "batch_size": 4,
        "block_size": 256,
        "lr": 1e-3,
        "warmup_steps": 4,
        "eval_every": 8,
        "save_every": 10_000,
        "patience": 0,
        "tag_dropout": 0.15,
        "progress": False,
    },
}


@dataclass
class Built:
    """What ``build`` produced: where everything is, and what it said about itself."""

    prepared: Path
    run: Path
    checkpoint: Path | None
    card: Card | None
    summary: dict[str, Any]
    stats: dict[str, Any]


def train_config(recipe: str, data: Path, out: Path, **overrides: Any) -> TrainConfig:
    """The recipe's TrainConfig for ``data`` -> ``out``, with ``overrides`` (TrainConfig fields) applied."""
    if recipe not in RECIPES:
        raise ConfigError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    return TrainConfig(data=str(data), out=str(out), **{**RECIPES[recipe], **overrides})


def build(
    sources: list[str | Path],
    work: Path,
    recipe: str,
    precision: str | None = "int8",
    steering: Steering | None = None,
    data: dict[str, Any] | None = None,
    say: Callable[[str], None] = log.info,
    on_step: StepHook | None = None,
    on_start: StartHook | None = None,
    **overrides: Any,
) -> Built:
    """Prepare ``sources`` into ``work/prepared`` (kept if there), train ``work/run`` afresh with the
    recipe, and export ``work/checkpoint`` (skipped when ``precision`` is None) with ``steering``'s
    sampling defaults in its card; ``on_start`` and ``on_step`` are the training loop's hooks."""
    from linernotes.training.loop import train

    work = Path(work)
    prepared, run = work / "prepared", work / "run"
    stats = prepare_once(sources, prepared, data or {}, say)
    config = train_config(recipe, prepared, run, **overrides)
    say(f"Training {config.base_name} ({'LoRA adapter' if config.lora else 'all weights'}, recipe {recipe})")
    shutil.rmtree(run, ignore_errors=True)
    summary = train(config, on_step, on_start)
    if precision is None:
        return Built(prepared, run, None, None, summary, stats)
    checkpoint = work / "checkpoint"
    say(f"Exporting {precision} checkpoint with its card and copy-guard index: {checkpoint}")
    card = export_run(run, checkpoint, precision, config.lora, steering)
    return Built(prepared, run, checkpoint, card, summary, stats)


def prepare_once(
    sources: list[str | Path], out: Path, settings: dict[str, Any], say: Callable[[str], None]
) -> dict[str, Any]:
    """Prepared splits in ``out``: reused when present (preparing is deterministic), else written."""
    import json

    stats_file = out / "stats.json"
    if stats_file.is_file() and (out / "train.jsonl").is_file():
        return json.loads(stats_file.read_text())
    say(f"Preparing {', '.join(str(s) for s in sources)}")
    result = prepare(DataConfig(sources=[str(s) for s in sources], out=str(out), **settings))
    return result.stats


def steps_for_budget(
    config: TrainConfig,
    minutes: float,
    probe_steps: int = 12,
    margin: float = 0.9,
    clock: Callable[[], float] = time.perf_counter,
) -> int:
    """Optimizer steps of ``config`` that fit ``minutes`` of training on this machine, timed by a short
    probe run (in a temporary directory), so a time-budgeted run's cosine schedule ends with the budget."""
    from linernotes.training.loop import train

    if probe_steps < 4:
        raise ConfigError(f"probe_steps must be at least 4 (two warm-up steps, two timed), got {probe_steps}")
    if not minutes > 0:
        raise ConfigError(f"the training budget must be positive, got {minutes} minutes")
    stamps: list[float] = []
    with tempfile.TemporaryDirectory(prefix="linernotes-probe-") as tmp:
        probe = replace(
            config,
            out=tmp,
            steps=probe_steps,
            eval_every=10_000,
            eval_batches=1,  # the probe's one closing validation pass: as short as it can be
            save_every=10_000,
            sample_every=0,
            max_minutes=None,
            resume=False,
            progress=False,
        )
        train(probe, on_step=lambda progress, loss: stamps.append(clock()))
    # Steady-state steps only: start-up and the first steps (allocation, warm caches) are paid once per
    # run; counting them made a 20-minute run stop at two thirds of its budget.
    per_step = statistics.median(b - a for a, b in itertools.pairwise(stamps[2:]))
    # Periodic validation costs time too: the margin keeps the budget, not the schedule, the cap.
    return max(1, int(minutes * 60 / per_step * margin))


def reexport(work: Path, **settings: PerKind | None) -> Card:
    """Export ``work/run`` into ``work/checkpoint`` again, at the checkpoint's precision and sampling
    defaults but for ``settings`` given (``Steering`` fields, e.g. the scale an evaluation chose)."""
    from linernotes.model.card import read_card
    from linernotes.training.export import read_run
    from linernotes.training.steering import Steering

    work = Path(work)
    card = read_card(work / "checkpoint")
    lora = bool(read_run(work / "run")["config"].get("lora"))
    steering = Steering.of(card).with_values(**settings)
    return export_run(work / "run", work / "checkpoint", card.precision, lora, steering)


def export_run(
    run: Path, checkpoint: Path, precision: str, lora: bool, steering: Steering | None = None
) -> Card:
    """Export ``run``; an adapter is merged into its base unless kept as fp32, so the bot loads one
    self-contained (int8) model."""
    from linernotes.training.export import export

    merge = lora and precision != "fp32"
    return export(run, checkpoint, precision, merge, steering)
