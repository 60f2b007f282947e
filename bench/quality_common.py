"""What the quality benchmarks (``quality_lyrics.py``, ``quality_reviews.py``) share: where the shared corpora
and the cached base are, progress lines, percentages, and fluency under the untouched base.

Fluency is the perplexity of texts under the untouched pretrained base (fp32, plain text, no tag header),
their first ``FLUENCY_TOKENS`` tokens each, beside the same figure for real held-out text of the same kind.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LINERNOTES_SHARED") or REPO.parent / "shared")
FLUENCY_BASE = "smollm2-135m"  # the untouched pretrained model fluency is measured under
FLUENCY_TOKENS = 128  # base tokens scored per text: most real sections whole, generated ones cut alike


def add_eval_flags(p: argparse.ArgumentParser, precision_help: str) -> None:
    """The flags both quality benchmarks take for evaluating: guidance scales, contrast, repetition penalty,
    sampling seed, scoring batch, weights, texts per fluency figure, ranked drafts and what the judges read."""
    from linernotes.training.eval.config import FEATURES, EvalConfig

    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0], help="scales to evaluate")
    p.add_argument(
        "--contrast",
        type=float,
        default=None,
        help=(
            "contrast weight (guidance away from the mirrored score or rating, a review's other genre, a "
            "song's other part) at every scale (default: the card's)"
        ),
    )
    p.add_argument(
        "--repetition-penalty",
        type=float,
        default=None,
        help="repetition penalty for every kind (1: off; default: the card's for each kind)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=EvalConfig.seed,  # eval's own default: the seeds every earlier figure was drawn with
        help="first sampling seed (another draws other texts: tune on one, confirm on the default)",
    )
    p.add_argument("--score-batch", type=int, default=16, help="sequences per forward pass when scoring")
    p.add_argument("--eval-precision", choices=["auto", "fp32"], default="auto", help=precision_help)
    p.add_argument("--fluency-texts", type=int, default=200, help="texts per fluency figure (0: all)")
    p.add_argument(
        "--candidates", type=int, default=1, help="drafts per generation, the checkpoint's ranker keeping one"
    )
    p.add_argument(
        "--judges",
        choices=FEATURES,
        default="words+chars",
        help="what the judges read (chars: not the ranker's word features, to grade --candidates)",
    )


def say(message: str) -> None:
    """A progress line, flushed (the runs are long)."""
    print(message, flush=True)


def print_aligned(rows: list[list[str]] | list[tuple[str, ...]]) -> None:
    """A table as aligned text: the first row is the header, underlined."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    say("")
    for i, row in enumerate(rows):
        say(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            say("-+-".join("-" * w for w in widths))


def pct(x: float | None, digits: int = 1) -> str:
    """A share as a percentage ("n/a" for None or NaN)."""
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}%"


def use_repo_bases() -> None:
    """Resolve pretrained bases from the repo's cache unless the environment names another place."""
    if not (os.environ.get("LINERNOTES_BASES") or os.environ.get("LINERNOTES_HOME")):
        os.environ["LINERNOTES_BASES"] = str(REPO / ".linernotes" / "bases")


def spread(texts: list[str], n: int) -> list[str]:
    """At most ``n`` of ``texts``, taken evenly through the list (so across every condition)."""
    return texts[:: max(1, math.ceil(len(texts) / n))][:n] if n else texts


def fluency_scorer(texts_per_figure: int, batch_size: int) -> Callable[[list[str]], float]:
    """A function giving the perplexity of (at most ``texts_per_figure`` of) some texts under the untouched
    base, loaded once here."""
    from linernotes.model.bases import resolve_base
    from linernotes.training.eval.fluency import load_scorer, perplexity_of

    base = resolve_base(FLUENCY_BASE, say)
    say(f"fluency: scoring under {base} (fp32, plain text, first {FLUENCY_TOKENS} tokens)")
    model, tokenizer = load_scorer(base)

    def ppl(texts: list[str]) -> float:
        return perplexity_of(model, tokenizer, spread(texts, texts_per_figure), batch_size, FLUENCY_TOKENS)

    return ppl
