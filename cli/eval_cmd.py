"""``linernotes eval CKPT --data DIR --out REPORT``: measured quality, and ``--compare A B``."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from data.errors import ConfigError, InputError
from model.card import PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` parser."""
    p = sub.add_parser("eval", help="evaluate a checkpoint: perplexity, tag adherence, copying, diversity")
    p.add_argument("checkpoint", nargs="?", help="checkpoint directory (or use --compare A B)")
    p.add_argument(
        "--compare", nargs=2, metavar=("CKPT_A", "CKPT_B"), help="evaluate two models side by side"
    )
    p.add_argument(
        "--data", required=True, help="prepared directory (train.jsonl for judges, test.jsonl held out)"
    )
    p.add_argument("--out", required=True, help="report directory")
    p.add_argument("--samples", type=int, default=8, help="generations per condition (default 8)")
    p.add_argument(
        "--guidance", type=float, nargs="+", help="guidance scales to compare (default: 1.0 and the card's)"
    )
    p.add_argument(
        "--max-values",
        type=int,
        default=10,
        help="genres/artists judged: those with the most held-out examples (default 10)",
    )
    p.add_argument(
        "--max-parts", type=int, default=4, help="song parts judged, chosen the same way (default 4)"
    )
    p.add_argument("--max-new-tokens", type=int, help="per generation (default: the card's sampling)")
    p.add_argument("--tag-id-examples", type=int, default=200, help="real examples for tag-ID (default 200)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--db", help="the bot's database: human ratings and cache duplicates")
    p.add_argument("--sweep", help="a `linernotes train --sweep` directory: plot loss against dataset size")
    p.add_argument("--precision", choices=["auto", *PRECISIONS], default="auto")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=run)


def _config(args: argparse.Namespace, checkpoint: str, out: Path):
    from training.eval.config import EvalConfig

    return EvalConfig(
        checkpoint=checkpoint,
        data=args.data,
        out=str(out),
        samples=args.samples,
        guidance=tuple(args.guidance or ()),
        max_values=args.max_values,
        max_parts=args.max_parts,
        max_new_tokens=args.max_new_tokens,
        tag_id_examples=args.tag_id_examples,
        seed=args.seed,
        precision=args.precision,
        device=args.device,
        sweep=args.sweep,
    )


def from_database(path: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Rated generations and cached texts per key, read from the bot's database."""
    from bot.storage import Database

    if not Path(path).is_file():
        raise InputError(f"--db {path}: no such database")

    async def read() -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
        db = Database(path)
        await db.open()
        try:
            return await db.rated(), await db.texts_by_key()
        finally:
            await db.close()

    return asyncio.run(read())


def run(args: argparse.Namespace) -> int:
    """Evaluate one checkpoint, or two and compare them."""
    from training.eval.compare import write_comparison
    from training.eval.run import evaluate

    if bool(args.checkpoint) == bool(args.compare):
        raise ConfigError("give one checkpoint, or --compare CKPT_A CKPT_B")
    rated, cached = from_database(args.db) if args.db else (None, None)
    out = Path(args.out)
    if args.checkpoint:
        report = evaluate(_config(args, args.checkpoint, out), rated, cached)
        print(f"report for {report['model_id']}: {out / 'report.md'}")
        return 0
    a, b = (
        evaluate(_config(args, c, out / n), rated, cached) for c, n in zip(args.compare, "AB", strict=True)
    )
    rows = write_comparison(a, b, out / "compare.md")
    for r in rows:
        print(f"{r['metric']:<36} A {r['A']:>9.4g}  B {r['B']:>9.4g}  -> {r['winner']}")
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"comparison: {out / 'compare.md'}")
    return 0
