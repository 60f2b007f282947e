"""``linernotes prepare SOURCE... --out DIR``: corpora in, tagged training examples out."""

from __future__ import annotations

import argparse

from linernotes.common.flags import add_flags, from_args
from linernotes.data.config import DataConfig
from linernotes.data.prepare import prepare, summary


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` parser: one flag per DataConfig field."""
    p = sub.add_parser("prepare", help="turn corpora into tagged train/val/test examples")
    add_flags(p, DataConfig)
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> DataConfig:
    """The DataConfig these flags describe."""
    return from_args(DataConfig, args)


def run(args: argparse.Namespace) -> int:
    """Prepare and print the summary."""
    result = prepare(config_from_args(args))
    print(summary(result))
    print(f"wrote {args.out}/train.jsonl, val.jsonl, test.jsonl, stats.json")
    return 0
