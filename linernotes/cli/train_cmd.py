"""``linernotes train`` and ``linernotes sweep``: fine-tune on prepared examples."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field

from linernotes.common.flags import add_flags, flag, from_args
from linernotes.training.config import TrainConfig

log = logging.getLogger(__name__)


# Fields that are not flags of `train`: sweep sets max_examples from --sizes.
NOT_FLAGS = frozenset({"max_examples"})


@dataclass(frozen=True)
class SweepArgs:
    """What ``linernotes sweep`` takes besides the training settings: the sizes, and where the runs go."""

    sizes: str = field(metadata=flag("comma-separated example counts, e.g. 50,100,200,400"))
    # Sweep's own --out (TrainConfig's is one run's directory); every run is written below it.
    out: str = field(metadata=flag("directory for the runs, sweep.csv and sweep.png"))


def add_train_flags(p: argparse.ArgumentParser, exclude: frozenset[str] = frozenset()) -> None:
    """Flags shared by train and sweep: one per TrainConfig field, except ``exclude``."""
    add_flags(p, TrainConfig, NOT_FLAGS | exclude)


def config_from_args(args: argparse.Namespace, **override) -> TrainConfig:
    """The TrainConfig these flags describe."""
    return from_args(TrainConfig, args, **override)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    p = sub.add_parser("train", help="fine-tune a causal LM (or a fresh GPT-2) on prepared examples")
    add_train_flags(p)
    p.set_defaults(handler=run)
    register_sweep(sub)


def run(args: argparse.Namespace) -> int:
    """Train and print where things landed."""
    from linernotes.training.loop import train

    config = config_from_args(args)
    try:
        summary = train(config)
    except KeyboardInterrupt:
        print(f"interrupted; state saved in {config.out}/state; continue with the same command and --resume")
        return 130
    best = summary["best_val_loss"]
    print(
        f"{summary['status']}: {summary['steps']} steps, {summary['tokens']:,} tokens in {summary['elapsed_s']}s"
    )
    if best is not None:
        print(
            f"best validation loss {best:.4f} (perplexity {summary['best_val_ppl']:.2f}) at step {summary['best_step']}"
        )
    print(
        f"run: {config.out} (metrics.jsonl, loss.png, best/); export with `linernotes export {config.out} --out CKPT`"
    )
    return 0


def register_sweep(sub: argparse._SubParsersAction) -> None:
    """Add the ``sweep`` parser."""
    p = sub.add_parser("sweep", help="train at growing dataset sizes; plot validation loss against examples")
    add_train_flags(p, exclude=frozenset({"resume", "out"}))
    add_flags(p, SweepArgs)
    p.set_defaults(handler=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep and print its table."""
    from linernotes.training.sweep import parse_sizes, sweep

    rows = sweep(config_from_args(args), parse_sizes(args.sizes), args.out)
    for r in rows:
        print(
            f"{r['examples']:>7} examples: validation loss {r['best_val_loss']:.4f} (perplexity {r['best_val_ppl']:.1f})"
        )
    print(f"wrote {args.out}/sweep.csv and {args.out}/sweep.png")
    return 0
