"""``linernotes train`` and ``linernotes sweep``: fine-tune on prepared examples."""

from __future__ import annotations

import argparse
import logging

from training.config import SCRATCH, TrainConfig

log = logging.getLogger(__name__)


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by train and sweep."""
    d = TrainConfig(data="", out="")
    p.add_argument("--data", required=True, help="prepared data directory (from `linernotes prepare`)")
    p.add_argument(
        "--base", default=d.base, help="Hugging Face causal LM name or local directory (default gpt2)"
    )
    p.add_argument(
        "--from-scratch", choices=list(SCRATCH), help="fresh GPT-2 + BPE tokenizer trained on the data"
    )
    p.add_argument(
        "--extra-data",
        action="append",
        default=[],
        metavar="DIR_OR_JSONL",
        help="more training examples, e.g. a `linernotes feedback export` directory",
    )
    p.add_argument("--steps", type=int, help="optimizer steps (default: --epochs)")
    p.add_argument("--epochs", type=float, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="blocks per micro-batch")
    p.add_argument("--grad-accum", type=int, default=d.grad_accum)
    p.add_argument("--block-size", type=int, default=d.block_size, help="tokens per packed block")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--grad-clip", type=float, default=d.grad_clip)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default=d.precision)
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--eval-batches", type=int)
    p.add_argument("--save-every", type=int, default=d.save_every)
    p.add_argument("--sample-every", type=int, default=d.sample_every)
    p.add_argument(
        "--patience", type=int, default=d.patience, help="early stopping after N evals without gain"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this much training time (evaluating first); a CPU budget",
    )
    p.add_argument(
        "--tag-dropout",
        type=float,
        default=d.tag_dropout,
        help="share of examples trained with the unconditioned header (needed for --guidance; 0.15 measured well)",
    )
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter instead of all weights")
    p.add_argument("--lora-r", type=int, default=d.lora_r)
    p.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace, **override) -> TrainConfig:
    """The TrainConfig these flags describe."""
    fields = {
        "data": args.data,
        "out": getattr(args, "out", ""),
        "base": args.base,
        "from_scratch": args.from_scratch,
        "extra_data": args.extra_data,
        "steps": args.steps,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "block_size": args.block_size,
        "lr": args.lr,
        "warmup_steps": args.warmup_steps,
        "min_lr_ratio": args.min_lr_ratio,
        "weight_decay": args.weight_decay,
        "grad_clip": args.grad_clip,
        "precision": args.precision,
        "gradient_checkpointing": args.gradient_checkpointing,
        "seed": args.seed,
        "eval_every": args.eval_every,
        "eval_batches": args.eval_batches,
        "save_every": args.save_every,
        "sample_every": args.sample_every,
        "patience": args.patience,
        "max_minutes": args.max_minutes,
        "tag_dropout": args.tag_dropout,
        "lora": args.lora,
        "lora_r": args.lora_r,
        "lora_alpha": args.lora_alpha,
        "resume": getattr(args, "resume", False),
        "progress": not args.no_progress,
    }
    fields.update(override)
    return TrainConfig(**fields)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` parser."""
    p = sub.add_parser("train", help="fine-tune a causal LM (or a fresh GPT-2) on prepared examples")
    add_train_flags(p)
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.set_defaults(handler=run)
    register_sweep(sub)


def run(args: argparse.Namespace) -> int:
    """Train and print where things landed."""
    from training.loop import train

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
    add_train_flags(p)
    p.add_argument("--sizes", required=True, help="comma-separated example counts, e.g. 50,100,200,400")
    p.add_argument("--out", required=True, help="directory for the runs, sweep.csv and sweep.png")
    p.set_defaults(handler=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep and print its table."""
    from training.sweep import parse_sizes, sweep

    rows = sweep(config_from_args(args), parse_sizes(args.sizes), args.out)
    for r in rows:
        print(
            f"{r['examples']:>7} examples: validation loss {r['best_val_loss']:.4f} (perplexity {r['best_val_ppl']:.1f})"
        )
    print(f"wrote {args.out}/sweep.csv and {args.out}/sweep.png")
    return 0
