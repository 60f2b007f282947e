"""Quality of album reviews and product reviews: do the requested score, genre and rating change what is written?

The sibling of ``quality_lyrics.py`` for the other two kinds, on one checkpoint (default: the demo's). Real
text comes through the project's own ``prepare`` pipeline, prepared once into ``WORK/prepared``:

- reviews: the bundled corpus (``data/sample``). Of ``../shared/corpora`` only ``pitchfork-nolan-tables``
  has scores, and it has no review text (its ``content`` table is missing), so nothing of it can be judged;
- product reviews: the bundled products plus the shared Amazon samples (Datafiniti electronics, McAuley
  musical instruments).

A fifth of the groups is held out (``--held-out``, against prepare's default 5%) so the ceilings rest on
more than a dozen texts. The held-out split is hash-based, so what the demo held out stays held out.

Judges (``training.eval.judges``) are fitted on the training split: a ridge regressor for the review score,
logistic classifiers for the genre and the star rating. The model is asked, through ``training.eval``'s
conditions, for every genre (the ``--genres`` best represented in the held-out split) at five scores spread
over its trained range, and for every rating 1-5, ``--samples`` texts per request, at the card's sampling
at each ``--guidance`` scale and once with the tags removed (the floor). Reported per kind:

- review score adherence: Spearman and MAE between requested and judged score; genre accuracy;
- product rating adherence: Spearman and MAE between requested and judged stars; rating accuracy;

each beside its ceiling (the judge on held-out real text) and its floor (generations with no tags), plus
clean stops, distinct-2 against real text of the same requests, and fluency: the perplexity of the texts
under the untouched base (as for lyrics) beside that of real held-out text of the kind.

Usage::

    python bench/quality_reviews.py [--checkpoint DIR] [--samples 4] [--guidance 1 2] [--work DIR]

Prints a table and ends with ``RESULT review_score_spearman <x> target >= 0.6`` (at the best scale).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from quality_common import (  # noqa: E402
    FLUENCY_BASE,
    SHARED,
    add_eval_flags,
    fluency_scorer,
    pct,
    print_aligned,
    say,
    use_repo_bases,
)

from linernotes.training.eval.adherence import LabelAdherence, Regression, ScoreAdherence  # noqa: E402
from linernotes.training.eval.config import EvalConfig  # noqa: E402
from linernotes.training.eval.result import AtScale, Generation  # noqa: E402
from linernotes.training.eval.run import Loaded, candidate_values, generation_measures, load  # noqa: E402
from linernotes.training.pipeline import prepare_once  # noqa: E402

SOURCES = [
    REPO / "data" / "sample",
    SHARED / "corpora" / "amazon-datafiniti-electronics",
    SHARED / "corpora" / "amazon-mcauley-musical-instruments",
]
DEMO = REPO / ".linernotes" / "demo" / "checkpoint"
KINDS = ("review", "product")
SPEARMAN_TARGET = 0.6  # reviews: requested against judged score
OF_CEILING = 0.8  # reviews and products: Spearman at least this share of real text's


@dataclass
class KindResult:
    """One kind's generations and their measures, with fluency per scale and real text's."""

    kind: str
    generation: Generation
    seconds: float
    real_ppl: float = math.nan
    fluency: dict[str, float] = field(default_factory=dict)  # scale -> perplexity under the base

    @property
    def scales(self) -> list[str]:
        """The guidance scales evaluated, as report keys."""
        return list(self.generation.by_guidance)

    def at(self, scale: str) -> AtScale:
        """The measures at one scale."""
        return self.generation.by_guidance[scale]


# --- measuring --------------------------------------------------------------------------------


def config(args: argparse.Namespace) -> EvalConfig:
    """The evaluation settings every kind shares."""
    return EvalConfig(
        checkpoint=str(args.checkpoint),
        data=str(Path(args.work) / "prepared"),
        out=str(Path(args.work) / "report"),
        samples=args.samples,
        guidance=tuple(args.guidance),
        contrast=args.contrast,
        repetition_penalty=args.repetition_penalty,
        max_values=args.genres,
        batch_size=args.score_batch,
        seed=args.seed,
        precision=args.eval_precision,
        candidates=args.candidates,
        judges=args.judges,
    )


def measure(loaded: Loaded, kind: str, samples: int) -> KindResult:
    """Generate ``samples`` per request of ``kind`` (and its floor), judged by judges fitted on the training
    split."""
    settings = replace(loaded.config, kinds=(kind,), out=str(Path(loaded.config.out) / kind), samples=samples)
    own = replace(
        loaded, config=settings, candidates=candidate_values(loaded.gen.card, settings, loaded.held)
    )
    started = time.perf_counter()
    generation = generation_measures(own, Path(settings.out) / "judges.joblib")
    seconds = time.perf_counter() - started
    s = generation.samples
    say(
        f"{kind}: {s.conditions} requests x {s.per_condition} x {len(generation.guidance)} scales + floor, {seconds:.0f} s"
    )
    return KindResult(kind, generation, seconds)


def add_fluency(results: list[KindResult], loaded: Loaded, args: argparse.Namespace) -> None:
    """Each kind's fluency at every scale under the untouched base, and that of its real held-out text."""
    ppl = fluency_scorer(args.fluency_texts, args.score_batch)
    for r in results:
        r.real_ppl = ppl([x.text for x in loaded.held if x.kind == r.kind])
        r.fluency = {scale: ppl(texts) for scale, texts in r.generation.texts.items()}


# --- the table --------------------------------------------------------------------------------

Row = tuple[str, Callable[[str], str], str, str, str]  # measure, cell per scale, ceiling, floor, target
Reading = tuple[Regression, Regression, Regression]  # ceiling, generated, floor


def num(x: float | None, digits: int = 2) -> str:
    """A figure, or "n/a"."""
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def interval(ci: tuple[float, float] | None, show: Callable[[float], str] | None = None) -> str:
    """A 95% interval as "low to high" ("n/a" without one)."""
    if ci is None:
        return "n/a"
    show = show or num
    return f"{show(ci[0])} to {show(ci[1])}"


def _score(b: AtScale) -> Reading:
    a = b.adherence["review/score"]
    assert isinstance(a, ScoreAdherence)
    return a.ceiling, a.generated, a.floor


def _stars(b: AtScale) -> Reading:
    a = b.adherence["product/rating"]
    assert isinstance(a, LabelAdherence) and a.ordinal is not None
    return a.ordinal.ceiling, a.ordinal.generated, a.ordinal.floor


def _regression_rows(r: KindResult, name: str, read: Callable[[AtScale], Reading], target: str) -> list[Row]:
    """Spearman and MAE rows of a requested-against-judged reading."""
    ceil, _, floor = read(r.at(r.scales[0]))

    def gen(s: str) -> Regression:
        return read(r.at(s))[1]

    return [
        (
            f"{name} Spearman (95% CI)",
            lambda s: f"{num(gen(s).spearman)} ({interval(gen(s).spearman_ci95)}, n={gen(s).n})",
            f"{num(ceil.spearman)} ({interval(ceil.spearman_ci95)}, n={ceil.n})",
            num(floor.spearman),
            target,
        ),
        (f"{name} MAE", lambda s: num(gen(s).mae), num(ceil.mae), num(floor.mae), ""),
    ]


def _label_row(r: KindResult, name: str, key: str, target: str) -> Row:
    """Accuracy of a classifier judge, with its ceiling, floor and chance."""

    def read(s: str) -> LabelAdherence:
        a = r.at(s).adherence[key]
        assert isinstance(a, LabelAdherence), key
        return a

    a = read(r.scales[0])
    return (
        f"{name} accuracy (95% CI)",
        lambda s: (
            f"{pct(read(s).generated.accuracy)} ({interval(read(s).generated.ci95, lambda x: pct(x, 0))}, "
            f"n={read(s).generated.n}, p={read(s).p_above_floor:.2g})"
        ),
        f"{pct(a.ceiling.accuracy)} (n={a.ceiling.n})",
        f"{pct(a.floor.accuracy)} (chance {pct(a.chance, 0)})",
        target,
    )


def _text_rows(r: KindResult) -> list[Row]:
    """Clean stops, distinct-2 against real text, and fluency under the untouched base."""
    real_d2 = r.generation.real_diversity.distinct_2
    return [
        (
            "clean stops",
            lambda s: pct(r.at(s).clean_stops),
            "",
            pct(r.generation.floor.clean_stops),
            ">= 95%",
        ),
        (
            "distinct-2",
            lambda s: (
                f"{num(r.at(s).diversity.distinct_2, 3)} ({r.at(s).diversity.distinct_2 / real_d2 - 1:+.1%})"
            ),
            f"real {num(real_d2, 3)}",
            "",
            "within 5% of real",
        ),
        (
            f"fluency: perplexity under {FLUENCY_BASE}",
            lambda s: f"{r.fluency[s]:.1f} ({r.fluency[s] / r.real_ppl:.2f}x real)",
            f"real held-out {r.real_ppl:.1f}",
            "",
            "<= 1.5x real",
        ),
    ]


def kind_rows(r: KindResult) -> list[Row]:
    """Every figure of one kind."""
    if r.kind == "review":
        target = f">= {SPEARMAN_TARGET} and >= {OF_CEILING:.0%} of ceiling"
        judged = [
            *_regression_rows(r, "score", _score, target),
            _label_row(r, "genre", "review/genre", "within 10 pts of ceiling"),
        ]
    else:
        judged = [
            *_regression_rows(r, "rating", _stars, f">= {OF_CEILING:.0%} of ceiling"),
            _label_row(r, "rating", "product/rating", ""),
        ]
    return [*judged, *_text_rows(r)]


def table(results: list[KindResult]) -> list[list[str]]:
    """Header and rows: kind, measure, one column per guidance scale, ceiling, floor, target."""
    scales = results[0].scales
    head = [
        "kind",
        "measure",
        *[f"guidance {s}" for s in scales],
        "ceiling (real held-out)",
        "floor (no tags)",
    ]
    out = [[*head, "target"]]
    for r in results:
        for name, cell, ceil, floor, target in kind_rows(r):
            out.append([r.kind, name, *[cell(s) for s in scales], ceil, floor, target])
    return out


def print_table(rows: list[list[str]]) -> None:
    """The table, as aligned text and as Markdown (for docs/quality.md)."""
    print_aligned(rows)
    say("\nMarkdown:\n")
    for i, row in enumerate(rows):
        say("| " + " | ".join(row) + " |")
        if i == 0:
            say("|" + "|".join("---" for _ in row) + "|")


Confusions = dict[str, dict[str, dict[str, dict[str, int]]]]  # judge -> scale -> requested -> judged -> count


def confusions(results: list[KindResult]) -> Confusions:
    """Per label judge and scale, requested label -> judged label -> count: where the misses go."""
    out: Confusions = {}
    for r in results:
        for s in r.scales:
            for key, a in r.at(s).adherence.items():
                if isinstance(a, LabelAdherence):
                    rows = {
                        want: {got: n for got, n in zip(a.labels, row, strict=True) if n}
                        for want, row in zip(a.labels, a.confusion, strict=True)
                    }
                    out.setdefault(key, {})[f"guidance {s}"] = rows
    return out


def print_confusions(found: Confusions) -> None:
    """Each confusion as lines of "requested: judged counts", misses after hits."""
    for key, by_scale in found.items():
        for scale, rows in by_scale.items():
            say(f"\n{key} at {scale}, requested: judged as")
            for want, got in rows.items():
                ranked = sorted(got.items(), key=lambda kv: (kv[0] != want, -kv[1]))
                say(f"  {want}: " + ", ".join(f"{label} {n}" for label, n in ranked))


def best_score_spearman(review: KindResult) -> tuple[str, float]:
    """The scale with the highest review score Spearman, and that figure."""
    by = {s: _score(review.at(s))[1].spearman for s in review.scales}
    scale = max(by, key=lambda s: -math.inf if by[s] is None else by[s])
    return scale, by[scale] if by[scale] is not None else math.nan


# --- main -------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(DEMO), help="checkpoint to evaluate (default: the demo's)")
    p.add_argument("--samples", type=int, default=4, help="generations per request (per grid cell)")
    p.add_argument(
        "--product-samples",
        type=int,
        default=None,
        help="generations per product rating (default: --samples)",
    )
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="kinds to measure")
    p.add_argument(
        "--genres", type=int, default=5, help="genres asked for, 5 scores each (also caps the ratings judged)"
    )
    p.add_argument("--held-out", type=float, default=0.2, help="share of groups held out for the ceilings")
    add_eval_flags(
        p, "weights as evaluated: auto = the checkpoint's own (int8 for the demo); fp32 = dequantized"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--work", default=str(REPO / ".linernotes" / "bench" / "quality-reviews"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Prepare once, measure each kind, add fluency, print the table and the RESULT line."""
    import torch

    args = parse(argv)
    torch.set_num_threads(args.threads)
    use_repo_bases()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    missing = [str(s) for s in SOURCES if not s.is_dir()]
    if missing:
        sys.exit(f"corpora not found: {', '.join(missing)} (set LINERNOTES_SHARED)")
    settings = {"test_fraction": args.held_out}
    prepare_once(SOURCES, Path(args.work) / "prepared", settings, say)
    loaded = load(config(args))
    per_kind = {"review": args.samples, "product": args.product_samples or args.samples}
    kinds = [k for k in KINDS if k in loaded.gen.card.kinds and k in args.kinds]
    results = [measure(loaded, kind, per_kind[kind]) for kind in kinds]
    add_fluency(results, loaded, args)
    rows = table(results)
    print_table(rows)
    found = confusions(results)
    print_confusions(found)
    out = Path(args.work) / "report" / "table.json"
    out.write_text(json.dumps({"argv": sys.argv[1:], "rows": rows, "confusion": found}, indent=1) + "\n")
    say(f"\n{per_kind} generations per request; wall time {(time.perf_counter() - started) / 60:.1f} min")
    review = next((r for r in results if r.kind == "review"), None)
    if review is None:
        return
    scale, rho = best_score_spearman(review)
    say(f"(review score Spearman at guidance {scale}, the best of {', '.join(review.scales)})")
    say(f"RESULT review_score_spearman {num(rho)} target >= {SPEARMAN_TARGET}")


if __name__ == "__main__":
    main()
