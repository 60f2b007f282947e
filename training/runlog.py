"""A run's record: metrics as JSON lines, the loss-curve plot, and the summary ``run.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends one JSON object per line to ``RUN/metrics.jsonl``."""

    def __init__(self, path: Path, truncate_after_step: int | None = None) -> None:
        self.path = path
        if truncate_after_step is not None and path.exists():
            # On resume, drop lines written after the restored state so the curve has no duplicates.
            kept = [
                line
                for line in path.read_text().splitlines()
                if json.loads(line)["step"] <= truncate_after_step
            ]
            path.write_text("".join(line + "\n" for line in kept))

    def write(self, **fields: Any) -> None:
        """Append one record."""
        with self.path.open("a") as f:
            f.write(json.dumps(fields) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """All records so far."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def plot_loss(records: list[dict[str, Any]], out: Path, title: str = "") -> Path | None:
    """Training loss (smoothed) and validation loss against steps, as a PNG."""
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    if not train and not val:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        steps, losses = zip(*train, strict=True)
        ax.plot(steps, losses, alpha=0.25, color="tab:blue")
        ax.plot(steps, _smooth(list(losses)), color="tab:blue", label="train (smoothed)")
    if val:
        steps, losses = zip(*val, strict=True)
        ax.plot(steps, losses, "o-", color="tab:orange", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _smooth(values: list[float], alpha: float = 0.9) -> list[float]:
    out, avg = [], values[0]
    for v in values:
        avg = alpha * avg + (1 - alpha) * v
        out.append(avg)
    return out


def perplexity(loss: float) -> float:
    """exp(loss), capped to stay finite in JSON."""
    return math.exp(min(loss, 50.0))
