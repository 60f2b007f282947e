"""``linernotes prepare SOURCE... --out DIR``: corpora in, tagged training examples out."""

from __future__ import annotations

import argparse

from data.config import DataConfig, parse_mapping
from data.format import KINDS
from data.prepare import prepare, summary
from data.readers import FORMATS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` parser."""
    p = sub.add_parser("prepare", help="turn corpora into tagged train/val/test examples")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files or directories to read")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--kind", choices=list(KINDS), help="record kind (needed for generic tables)")
    p.add_argument("--format", choices=FORMATS, help="input format (default: detect per file)")
    p.add_argument(
        "--map",
        action="append",
        metavar="FIELD=COLUMN[,...]",
        help="column mapping for tables, e.g. text=review,genre=genre,score=score",
    )
    p.add_argument("--min-helpful", type=int, default=0, help="product reviews: minimum helpful votes")
    p.add_argument("--artist", help="lyrics/songs: artist for every record (default: from the file name)")
    p.add_argument(
        "--chunk-lines", type=int, default=20, help="songs files without blank lines: lines per example"
    )
    p.add_argument(
        "--titles",
        action="store_true",
        help="lyrics: keep song titles as a tag (off by default: they lengthen every header and "
        "are a key for reciting memorised lyrics)",
    )
    p.add_argument("--min-chars", type=int, default=20)
    p.add_argument("--max-chars", type=int, default=20_000)
    p.add_argument("--min-tokens", type=int)
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--lowercase", action="store_true", help="lower-case all text (off by default)")
    p.add_argument("--dedupe", choices=["near", "exact", "none"], default="near")
    p.add_argument("--val-fraction", type=float, default=0.05)
    p.add_argument("--test-fraction", type=float, default=0.05)
    p.add_argument("--tokenizer", default="gpt2", help="tokenizer for token counts, if available locally")
    p.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> DataConfig:
    """The DataConfig these flags describe."""
    return DataConfig(
        sources=args.sources,
        out=args.out,
        kind=args.kind,
        format=args.format,
        mapping=parse_mapping(args.map),
        min_helpful=args.min_helpful,
        artist=args.artist,
        chunk_lines=args.chunk_lines,
        titles=args.titles,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        min_tokens=args.min_tokens,
        max_tokens=args.max_tokens,
        lowercase=args.lowercase,
        dedupe=args.dedupe,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        tokenizer=args.tokenizer,
    )


def run(args: argparse.Namespace) -> int:
    """Prepare and print the summary."""
    result = prepare(config_from_args(args))
    print(summary(result))
    print(f"wrote {args.out}/train.jsonl, val.jsonl, test.jsonl, stats.json")
    return 0
