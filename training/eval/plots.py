"""The report's PNGs: confusion matrices, requested vs judged score, loss curve, loss vs dataset size."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from linernotes.common.errors import InputError
from linernotes.model.card import Card
from linernotes.training.eval.adherence import LabelAdherence, ScoreAdherence
from linernotes.training.eval.result import EvalReport
from linernotes.training.runlog import plot_loss
from linernotes.training.sweep import plot_sweep

HISTORY = "metrics.jsonl"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_png(entry: LabelAdherence, path: Path, title: str) -> Path:
    """Requested (rows) against judged (columns) labels, counts in the cells."""
    plt = _pyplot()
    labels, m = entry.labels, entry.confusion
    size = max(4.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("judged")
    ax.set_ylabel("requested")
    for i, row in enumerate(m):
        for j, v in enumerate(row):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.7)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def score_png(entry: ScoreAdherence, path: Path, title: str) -> Path:
    """Requested score against the judge's reading of the generated review, with the diagonal."""
    plt = _pyplot()
    pairs = entry.pairs
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter([p[0] for p in pairs], [p[1] for p in pairs], alpha=0.5, s=14)
    lo = min([0.0] + [min(p) for p in pairs])
    hi = max([10.0] + [max(p) for p in pairs])
    ax.plot([lo, hi], [lo, hi], "--", color="grey", label="judged = requested")
    ax.set_xlabel("requested score")
    ax.set_ylabel("judged score")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def loss_history(card: Card, checkpoint: Path) -> list[dict[str, Any]]:
    """The run's metric log: stored in the checkpoint, else in the run directory when it still exists."""
    for path in (checkpoint / HISTORY, Path(str(card.training.get("out", ""))) / HISTORY):
        if path.is_file():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return []


def draw(report: EvalReport, out: Path, card: Card, sweep: str | None) -> dict[str, str]:
    """Every plot the report has data for; returns name -> file name (relative to ``out``)."""
    made: dict[str, str] = {}
    scale = report.generation.last_scale
    for name, entry in report.generation.last.adherence.items():
        slug, title = name.replace("/", "-"), f"{name}: requested vs judged (guidance {scale})"
        if isinstance(entry, LabelAdherence) and entry.tag in ("genre", "part"):
            made[f"confusion {name}"] = confusion_png(entry, out / f"confusion-{slug}.png", title).name
        elif isinstance(entry, ScoreAdherence) and entry.pairs:
            made[f"score {name}"] = score_png(entry, out / f"score-{slug}.png", title).name
    history = loss_history(card, Path(report.checkpoint))
    if history and plot_loss(history, out / "loss.png", card.model_id):
        made["loss curve"] = "loss.png"
    if sweep:
        rows = _sweep_rows(Path(sweep))
        if rows:
            plot_sweep(rows, out / "sweep.png")
            made["loss vs dataset size"] = "sweep.png"
    return made


def _sweep_rows(directory: Path) -> list[dict[str, Any]]:
    path = directory / "sweep.csv"
    if not path.is_file():
        raise InputError(
            f"--sweep {directory}: no sweep.csv there (make one with `linernotes train --sweep N,N,...`)"
        )
    with path.open(newline="") as f:
        return [
            {"examples": int(r["examples"]), "best_val_loss": float(r["best_val_loss"])}
            for r in csv.DictReader(f)
        ]
