"""``linernotes generate CKPT KIND --tag ...``: print generated texts (or JSON lines)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from linernotes.model.card import PRECISIONS

if TYPE_CHECKING:  # the model stack imports torch: only when a command runs
    from linernotes.model.generator import GenerateConfig
    from linernotes.model.sampling import Sampling


def add_sampling_flags(p: argparse.ArgumentParser) -> None:
    """Sampling and backend flags (shared with the bot's warm command); unset ones keep Sampling's defaults."""
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the card's)")
    p.add_argument("--precision", choices=["auto", *PRECISIONS], default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", choices=["local", "openai"], default="local")
    p.add_argument("--backend-url", help="OpenAI-compatible server, e.g. http://gpu-box:8000/v1")


def sampling_from_args(args: argparse.Namespace, default_guidance: float = 1.0) -> Sampling:
    """The Sampling these flags describe."""
    from linernotes.model.sampling import Sampling

    names = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return Sampling(**given, guidance=args.guidance if args.guidance is not None else default_guidance)


def generate_config(args: argparse.Namespace) -> GenerateConfig:
    """The GenerateConfig these flags describe."""
    from linernotes.model.generator import GenerateConfig

    return GenerateConfig(
        precision=args.precision, device=args.device, backend=args.backend, backend_url=args.backend_url
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``generate`` parser."""
    p = sub.add_parser("generate", help="generate texts from a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("kind", choices=["review", "lyrics", "product"])
    p.add_argument("--genre")
    p.add_argument("--score", type=float)
    p.add_argument("--part")
    p.add_argument("--artist")
    p.add_argument("--title")
    p.add_argument("--rating", type=int)
    p.add_argument("--headline")
    p.add_argument("--seed-line", help="lyrics: the first line to continue from")
    p.add_argument("-n", type=int, default=1, help="how many texts")
    p.add_argument("--seed", type=int, help="random seed (text i uses seed + 1000*i)")
    p.add_argument("--json", action="store_true", help="print JSON lines with tags, parameters, timings")
    add_sampling_flags(p)
    p.set_defaults(handler=run)


TAGS = {
    "review": ("genre", "score"),
    "lyrics": ("part", "artist", "title"),
    "product": ("rating", "headline"),
}


def run(args: argparse.Namespace) -> int:
    """Generate and print."""
    from linernotes.model.generator import Generator, Request

    gen = Generator.load(args.checkpoint, generate_config(args))
    tags = {k: getattr(args, k) for k in TAGS[args.kind] if getattr(args, k) is not None}
    base = sampling_from_args(args, gen.card.generation.get("guidance", 1.0))
    requests = [
        Request(
            args.kind,
            tags,
            args.seed_line,
            base if args.seed is None else base.with_seed(args.seed + 1000 * i),
        )
        for i in range(args.n)
    ]
    failed = 0
    for result in gen.generate(requests):
        failed += not result.ok
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        elif result.ok:
            print(result.text + "\n")
        else:
            print(f"[no text: {result.error}]\n")
    return 1 if failed == len(requests) else 0
