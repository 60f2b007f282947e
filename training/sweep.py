"""``linernotes sweep``: validation loss against the number of training examples (CSV + PNG).

Answers "how many songs does a good artist model need?": the same run settings, trained on the first
N examples for each N, evaluated on the same validation split.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.training.config import TrainConfig
from linernotes.training.loop import train

log = logging.getLogger(__name__)


def parse_sizes(text: str) -> list[int]:
    """``"50,100,200"`` -> [50, 100, 200], sorted, each positive."""
    try:
        sizes = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise ConfigError(f"--sizes expects comma-separated whole numbers, got {text!r}") from None
    if not sizes or sizes[0] <= 0:
        raise ConfigError(f"--sizes must list positive numbers, got {text!r}")
    return sizes


def sweep(base: TrainConfig, sizes: list[int], out: Path) -> list[dict[str, Any]]:
    """Train once per size into ``out/n-SIZE``; write ``sweep.csv`` and ``sweep.png``; return the rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        run = out / f"n-{size}"
        summary = train(replace(base, out=str(run), max_examples=size))
        if summary["best_val_loss"] is None:
            raise ConfigError(f"--data {base.data} has no validation split; a sweep needs one")
        rows.append(
            {
                "examples": summary["data"]["train_examples"],
                "requested": size,
                "best_val_loss": round(summary["best_val_loss"], 5),
                "best_val_ppl": round(summary["best_val_ppl"], 3),
                "steps": summary["steps"],
                "tokens": summary["tokens"],
                "run": str(run),
            }
        )
        log.info(
            "sweep: %d examples -> validation loss %.4f", rows[-1]["examples"], rows[-1]["best_val_loss"]
        )
    with (out / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot_sweep(rows, out / "sweep.png")
    return rows


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation loss against training examples, log-scaled x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["examples"] for r in rows], [r["best_val_loss"] for r in rows], "o-")
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel("best validation loss")
    ax.set_title("validation loss vs dataset size")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
