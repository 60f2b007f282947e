"""``linernotes eval CKPT --data DIR --out REPORT``: measured quality, and ``--compare A B``."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import add_flags, flag, from_args
from linernotes.training.eval.config import EvalConfig


@dataclass(frozen=True)
class EvalArgs:
    """What ``linernotes eval`` takes besides one report's settings (``EvalConfig``)."""

    compare: tuple[str, str] | None = field(
        default=None,
        metadata=flag("evaluate two models side by side", nargs=2, metavar=("CKPT_A", "CKPT_B")),
    )
    db: str | None = field(
        default=None, metadata=flag("the bot's database: human ratings and cache duplicates")
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``eval`` parser: one flag per EvalConfig field, and the database and --compare."""
    p = sub.add_parser("eval", help="evaluate a checkpoint: perplexity, tag adherence, copying, diversity")
    add_flags(p, EvalConfig)
    add_flags(p, EvalArgs)
    p.set_defaults(handler=run)


def _config(args: argparse.Namespace, checkpoint: str, out: Path) -> EvalConfig:
    """One report's settings: with --compare, each checkpoint gets a directory of its own."""
    return from_args(EvalConfig, args, checkpoint=checkpoint, out=str(out))


def from_database(path: str) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Rated generations and cached texts per key, read from the bot's database."""
    from linernotes.bot.storage import existing

    async def read() -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
        async with existing(path) as db:
            return await db.rated(), await db.texts_by_key()

    return asyncio.run(read())


def run(args: argparse.Namespace) -> int:
    """Evaluate one checkpoint, or two and compare them."""
    from linernotes.training.eval.compare import write_comparison
    from linernotes.training.eval.run import evaluate

    if bool(args.checkpoint) == bool(args.compare):
        raise ConfigError("give one checkpoint, or --compare CKPT_A CKPT_B")
    rated, cached = from_database(args.db) if args.db else (None, None)
    out = Path(args.out)
    if args.checkpoint:
        report = evaluate(_config(args, args.checkpoint, out), rated, cached)
        print(f"report for {report.model_id}: {out / 'report.md'}")
        return 0
    a, b = (
        evaluate(_config(args, c, out / n), rated, cached) for c, n in zip(args.compare, "AB", strict=True)
    )
    out.mkdir(parents=True, exist_ok=True)
    rows = write_comparison(a, b, out / "compare.md")
    for r in rows:
        print(f"{r['metric']:<36} A {r['A']:>9.4g}  B {r['B']:>9.4g}  -> {r['winner']}")
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"comparison: {out / 'compare.md'}")
    return 0
