"""``linernotes generate CKPT KIND --tag ...``: print generated texts (or JSON lines).

Its flags come from three typed configs: this command's own (``GenerateArgs``: what to write), the
sampling parameters (``model.sampling.Sampling``) and the generator's settings (``GenerateConfig``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

from linernotes.common.flags import add_flags, flag, from_args
from linernotes.data.format import KINDS
from linernotes.model.config import GenerateConfig, Sampling, card_sampling


@dataclass(frozen=True)
class GenerateArgs:
    """What ``linernotes generate`` is asked to write."""

    checkpoint: str = field(metadata=flag("checkpoint directory", positional=True))
    kind: str = field(metadata=flag("what to write", positional=True, choices=KINDS))
    genre: str | None = field(default=None, metadata=flag("review: the album's genre"))
    score: float | None = field(default=None, metadata=flag("review: the score, 0-10"))
    part: str | None = field(default=None, metadata=flag("lyrics: the song part (chorus, verse, ...)"))
    artist: str | None = field(default=None, metadata=flag("lyrics: write as this artist"))
    title: str | None = field(default=None, metadata=flag("lyrics: the song's title"))
    rating: int | None = field(default=None, metadata=flag("product: the star rating, 1-5"))
    headline: str | None = field(default=None, metadata=flag("product: the review's headline"))
    seed_line: str | None = field(default=None, metadata=flag("lyrics: the first line to continue from"))
    n: int = field(default=1, metadata=flag("how many texts", name="-n"))
    json: bool = field(default=False, metadata=flag("print JSON lines with tags, parameters, timings"))


TAGS = {
    "review": ("genre", "score"),
    "lyrics": ("part", "artist", "title"),
    "product": ("rating", "headline"),
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``generate`` parser: its flags derive from the three configs."""
    p = sub.add_parser("generate", help="generate texts from a checkpoint")
    add_flags(p, GenerateArgs)
    add_flags(p, Sampling)
    add_flags(p, GenerateConfig, exclude={"limit"})
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Generate and print."""
    from linernotes.model.generator import Generator, Request

    asked = from_args(GenerateArgs, args)
    gen = Generator.load(asked.checkpoint, from_args(GenerateConfig, args))
    tags = {k: getattr(asked, k) for k in TAGS[asked.kind] if getattr(asked, k) is not None}
    # A sampling flag not given keeps its default; guidance, contrast and the repetition penalty not
    # given: the card's for the kind.
    base = card_sampling(
        gen.card,
        asked.kind,
        from_args(Sampling, args, seed=None),
        args.guidance,
        args.contrast,
        args.repetition_penalty,
    )
    # Text i uses seed + 1000*i: reproducible one by one, yet different from each other.
    requests = [
        Request(
            asked.kind,
            tags,
            asked.seed_line,
            base if args.seed is None else base.with_seed(args.seed + 1000 * i),
        )
        for i in range(asked.n)
    ]
    failed = 0
    for result in gen.generate(requests):
        failed += not result.ok
        if asked.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        elif result.ok:
            print(result.text + "\n")
        else:
            print(f"[no text: {result.error}]\n")
    return 1 if failed == len(requests) else 0
