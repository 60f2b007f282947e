"""Entry point: parse the subcommand, run it, and turn user-fixable errors into one clear line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from linernotes.cli import commands
from linernotes.common.errors import LinernotesError

log = logging.getLogger("linernotes")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one sub-parser per command module."""
    parser = argparse.ArgumentParser(
        prog="linernotes", description="Album reviews and song lyrics from small fine-tuned GPT-2 models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in commands.MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 on success, 2 on a user-fixable error."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except LinernotesError as e:
        print(f"linernotes {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
