"""Run state for exact resume: weights, optimizer, scheduler, every RNG, and the data position."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linernotes.common.errors import CheckpointError
from linernotes.data.format import FORMAT_VERSION
from linernotes.model.atomic import atomic_dir
from linernotes.training.config import TrainConfig

STATE_DIR = "state"
STATE_FILE = "state.pt"


@dataclass
class Progress:
    """Where a run is: optimizer steps done, data position, and early-stopping bookkeeping."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # micro-batches of this epoch already consumed
    tokens: int = 0  # useful (non-padding) tokens trained on
    best_val: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # CPU seconds of the training process (every thread), across resumes: the run's cost


def trainable_state(model: torch.nn.Module, lora: bool) -> dict[str, torch.Tensor]:
    """Weights to save: all of them, or only the adapter's for LoRA (the base is reloaded)."""
    if lora:
        return {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().cpu() for n, t in model.state_dict().items()}


def save_state(run: Path, model, optimizer, scheduler, progress: Progress, lora: bool) -> None:
    """Write the full state atomically to ``RUN/state``."""
    state = {
        "model": trainable_state(model, lora),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": asdict(progress),
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        "format_version": FORMAT_VERSION,
    }
    atomic_dir(run / STATE_DIR, lambda tmp: torch.save(state, tmp / STATE_FILE))


def load_state(run: Path, model, optimizer, scheduler, lora: bool) -> Progress:
    """Restore everything ``save_state`` wrote; returns the progress to continue from."""
    file = run / STATE_DIR / STATE_FILE
    if not file.is_file():
        raise CheckpointError(f"{run}: nothing to resume (no {STATE_DIR}/{STATE_FILE})")
    try:
        state = torch.load(file, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: say so instead of a pickle traceback
        raise CheckpointError(f"{file}: corrupted, cannot resume ({type(e).__name__}: {e})") from None
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{run}: was trained with tag format {state.get('format_version')}, "
            f"this linernotes uses {FORMAT_VERSION}; start a new run"
        )
    missing, unexpected = model.load_state_dict(state["model"], strict=False)
    if unexpected or (missing and not lora):  # a LoRA state holds only the adapter: the rest is the base
        raise CheckpointError(
            f"{file}: weights do not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return Progress(**state["progress"])


def check_resumable(run: Path, config: TrainConfig, data_hash: str) -> None:
    """Refuse to resume a run whose recorded config or data differ in anything but schedule-free fields."""
    file = run / "config.json"
    if not file.is_file():
        raise CheckpointError(f"{run}: no config.json; not a linernotes run directory")
    record = json.loads(file.read_text())
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{run}: was started with tag format {record.get('format_version')}; "
            f"this linernotes uses {FORMAT_VERSION}; start a new run"
        )
    if record.get("data_hash") != data_hash:
        raise CheckpointError(
            f"{run}: the training data changed since this run started "
            f"({record.get('data_hash')} -> {data_hash}); start a new run with another --out"
        )
    saved = record["train"]
    current: dict[str, Any] = config.to_dict()
    changed = [k for k in current if k not in TrainConfig.RESUMABLE and saved.get(k) != current[k]]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise CheckpointError(f"{run}: cannot resume with different settings ({detail}); use another --out")
