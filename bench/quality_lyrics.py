"""Quality on real lyrics, side by side: the pretrained base fine-tuned against the from-scratch model.

On ../shared/corpora/genius-lyrics-100artists (real Genius lyrics with section headers), prepared
once, both models are built by the one pipeline (``training.pipeline.build``) with the same CPU
budget (``--minutes``), their step counts timed by a short probe so each cosine schedule ends with
the budget:

- ``pretrained``: recipe ``demo``, a LoRA adapter on the offline base smollm2-135m, merged;
- ``scratch``: recipe ``scratch-small``, the 4-layer 256-wide GPT-2 trained from nothing.

Each is exported in 8-bit and evaluated at each guidance scale with the bot's sampling settings (the
card's, up to 200 new tokens); the best scale that still stops cleanly is stored in its card. The
figures are printed in two columns, against the issue's targets for the pretrained side: likelihood
tag-ID for parts and artists, part (structure-aware judge) and artist adherence against floor and
ceiling, header leaks, clean stops, copy rate, distinct-2 against real text, and fluency: the
perplexity of the generated texts under the untouched base (fp32, plain text, no tag header) beside
that of real held-out sections.

``--sweep 0 0.1 0.2`` also trains the pretrained side at each tag-dropout rate, each for the steps one
probe finds in ``--sweep-minutes`` (the same for every rate, with no wall-clock cut, so a busy machine
does not favour one rate), and prints part adherence at guidance 2 and part tag-ID per rate.
``--models`` with no names runs the sweep alone.

Usage::

    python bench/quality_lyrics.py [--models [pretrained] [scratch]] [--minutes 20] [--samples 40]
        [--guidance 1 2] [--sweep 0 0.1 0.2 --sweep-minutes 8] [--work DIR] [--retrain] [--pair-weight W]

Each model's work directory (``WORK/pretrained``, ``WORK/scratch``, ``WORK/sweep/dropout-R``) keeps its
checkpoint, reused on the next run unless ``--retrain``. Ends with
``RESULT part_tag_id_pretrained <x>% target >= 60%``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

from linernotes.data.splits import read_split  # noqa: E402
from linernotes.model.card import read_card  # noqa: E402
from linernotes.training.eval.adherence import LabelAdherence  # noqa: E402
from linernotes.training.eval.config import EvalConfig  # noqa: E402
from linernotes.training.eval.result import AtScale, EvalReport  # noqa: E402
from linernotes.training.eval.run import evaluate  # noqa: E402
from linernotes.training.export import read_run  # noqa: E402
from linernotes.training.pipeline import build, prepare_once, reexport, steps_for_budget, train_config  # noqa: E402

CORPUS = SHARED / "corpora" / "genius-lyrics-100artists"
SWEEP_SCALE = "2"  # the guidance scale the tag-dropout sweep compares at
CLEAN = 0.95  # a scale must stop cleanly this often to be chosen


@dataclass(frozen=True)
class Side:
    """One model of the comparison: a pipeline recipe and the overrides that make it this benchmark's."""

    name: str
    recipe: str
    overrides: dict[str, Any] = field(default_factory=dict)


SIDES = {
    # LoRA on the 135M base. Lyrics sections are short (~90 tokens), so the recipe's 256-token blocks
    # pack two or three; validation every 60 steps on 16 batches (~16k tokens) keeps its cost under a
    # tenth of the budget, where the demo recipe's full pass every 40 steps would take a quarter.
    "pretrained": Side("pretrained", "demo", {"eval_every": 60, "eval_batches": 16, "save_every": 100_000}),
    # Exactly the model the benchmark reported before the pretrained base existed.
    "scratch": Side(
        "scratch",
        "scratch-small",
        {"batch_size": 16, "warmup_steps": 100, "eval_every": 200, "patience": 0, "save_every": 100_000},
    ),
}


@dataclass
class Measured:
    """One side's checkpoint, training summary, evaluation, chosen scale and fluency."""

    side: str
    checkpoint: Path
    trained: dict[str, Any]
    report: EvalReport
    chosen: str
    fluency: float = math.nan

    @property
    def best(self) -> AtScale:
        """The measures at the chosen scale."""
        return self.report.generation.by_guidance[self.chosen]


# --- training ---------------------------------------------------------------------------------


def trained(
    side: Side, work: Path, args: argparse.Namespace, minutes: float, dropout: float, steps: int | None = None
) -> Path:
    """``work/checkpoint`` for ``side``: reused when there (unless --retrain), else built within ``minutes``,
    or for exactly ``steps`` optimizer steps with no wall-clock cut when given (the sweep's equal compute)."""
    checkpoint = work / "checkpoint"
    if (checkpoint / "card.json").is_file() and not args.retrain:
        summary = read_run(work / "run")
        say(
            f"{side.name}: reusing {checkpoint} ({summary['steps']} steps, tag dropout "
            f"{summary['config']['tag_dropout']:g}, {summary['config'].get('max_minutes')} min; --retrain to redo)"
        )
        return checkpoint
    prepared = share_prepared(work, Path(args.work) / "prepared")
    overrides = {**side.overrides, "tag_dropout": dropout, "max_minutes": None if steps else minutes}
    if args.pair_weight is not None and side.name == "pretrained":
        overrides["pair_weight"] = args.pair_weight
    if steps is None:
        steps = probe(side, prepared, work, minutes, overrides)
    built = build([args.corpus], work, side.recipe, "int8", say=say, steps=steps, **overrides)
    s = built.summary
    say(
        f"{side.name}: {s['status']}, {s['steps']} steps in {s['elapsed_s'] / 60:.1f} min, "
        f"best validation loss {s['best_val_loss']:.3f} (own tokenizer)"
    )
    return checkpoint


def probe(side: Side, prepared: Path, work: Path, minutes: float, overrides: dict[str, Any]) -> int:
    """The optimizer steps of ``side`` that fit ``minutes`` on this machine, timed by a short probe."""
    started = time.perf_counter()
    steps = steps_for_budget(train_config(side.recipe, prepared, work / "run", **overrides), minutes)
    say(f"{side.name}: probe {time.perf_counter() - started:.0f} s; {steps} steps fit {minutes:g} min")
    return steps


def share_prepared(work: Path, prepared: Path) -> Path:
    """Link ``work/prepared`` to the shared prepared splits, so ``build`` reuses them; returns the link."""
    work.mkdir(parents=True, exist_ok=True)
    link = work / "prepared"
    if not link.exists():
        link.symlink_to(os.path.relpath(prepared, work))
    return link


# --- evaluation -------------------------------------------------------------------------------


def evaluated(
    checkpoint: Path, args: argparse.Namespace, scales: list[float], out: Path, artists: int = 10
) -> EvalReport:
    """Every measure of ``checkpoint`` at ``scales`` into ``out`` (judging the ``artists`` best-known artists)."""
    config = EvalConfig(
        checkpoint=str(checkpoint),
        data=str(Path(args.work) / "prepared"),
        out=str(out),
        samples=args.samples,
        guidance=tuple(scales),
        contrast=args.contrast,
        repetition_penalty=args.repetition_penalty,
        max_values=artists,
        max_parts=4,
        tag_id_examples=args.tag_id_examples,
        batch_size=args.score_batch,
        seed=args.seed,
        precision=args.eval_precision,
        candidates=args.candidates,
        judges=args.judges,
    )
    started = time.perf_counter()
    report = evaluate(config)
    say(f"evaluated in {time.perf_counter() - started:.0f} s: {out / 'report.md'}")
    return report


def label(block: AtScale, name: str) -> LabelAdherence:
    """A classifier judge's reading of one scale's texts ("lyrics/part", "lyrics/artist")."""
    entry = block.adherence[name]
    assert isinstance(entry, LabelAdherence), name
    return entry


def part(block: AtScale) -> LabelAdherence:
    """The structure-aware part judge's reading of one scale's texts."""
    return label(block, "lyrics/part")


def best_scale(report: EvalReport) -> str:
    """The scale with the best part adherence among those that still stop cleanly (all, if none do)."""
    blocks = report.generation.by_guidance
    ok = [s for s, b in blocks.items() if b.clean_stops >= CLEAN] or list(blocks)
    return max(ok, key=lambda s: part(blocks[s]).generated.accuracy)


def measure(side: Side, args: argparse.Namespace) -> Measured:
    """Train (or reuse), evaluate, and store the chosen scale in the card."""
    work = Path(args.work) / side.name
    checkpoint = trained(side, work, args, args.minutes, args.tag_dropout)
    report = evaluated(checkpoint, args, args.guidance, work / "report")
    chosen, card = best_scale(report), read_card(checkpoint)
    g = report.generation
    measured = (float(chosen), g.contrast["lyrics"], g.repetition_penalty["lyrics"])
    if (card.guidance("lyrics"), card.contrast("lyrics"), card.repetition_penalty("lyrics")) != measured:
        # The card (what the bot loads) carries the chosen scale and the settings it was measured with.
        guidance, contrast, penalty = measured
        reexport(work, guidance=guidance, contrast=contrast, repetition_penalty=penalty)
    return Measured(side.name, checkpoint, read_run(work / "run"), report, chosen)


def add_fluency(results: list[Measured], args: argparse.Namespace) -> float:
    """Each side's fluency (its chosen scale's texts) under the untouched base; returns real text's."""
    ppl = fluency_scorer(args.fluency_texts, args.score_batch)
    prepared = Path(args.work) / "prepared"
    held = [i.record.text for i in read_split(prepared, "test") if i.record.kind == "lyrics"]
    real = ppl(held)
    for r in results:
        r.fluency = ppl(r.report.generation.texts[r.chosen])
    return real


# --- the tag-dropout sweep --------------------------------------------------------------------


def sweep(args: argparse.Namespace) -> list[tuple[float, EvalReport]]:
    """The pretrained side at each tag-dropout rate, the steps of ``--sweep-minutes`` each, at guidance 2."""
    out, side, root = [], SIDES["pretrained"], Path(args.work) / "sweep"
    # One probe for every rate: each trains the same number of steps with no wall-clock cut, so the rates
    # differ only in tag dropout even when the machine is busier during one run than another.
    steps = probe(
        side, share_prepared(root, Path(args.work) / "prepared"), root, args.sweep_minutes, side.overrides
    )
    for rate in args.sweep:
        work = root / f"dropout-{rate:g}"
        checkpoint = trained(side, work, args, args.sweep_minutes, rate, steps)
        # Two artists instead of ten: the part figures compared here measure the same thing (same part
        # conditions, seeds, judge and tag-ID cases; texts differ only through batch numerics) at under half
        # the generation and tag-ID cost. Every rate is evaluated alike, so the rates compare fairly.
        out.append((rate, evaluated(checkpoint, args, [float(SWEEP_SCALE)], work / "report", artists=2)))
    return out


def print_sweep(rows: list[tuple[float, EvalReport]]) -> None:
    """Part adherence at guidance 2 and part tag-ID per rate, and the best rate."""
    say(f"\nTag-dropout sweep (pretrained base; part adherence at guidance {SWEEP_SCALE})")
    say(f"{'tag dropout':>12} | {'part adherence (95% CI)':<28} | {'floor':>6} | {'part tag-ID':>11}")
    scored = []
    for rate, report in rows:
        p = part(report.generation.by_guidance[SWEEP_SCALE])
        lo, hi = p.generated.ci95
        tid = report.tag_id["lyrics/part"].accuracy
        say(
            f"{rate:>12g} | {pct(p.generated.accuracy)} ({pct(lo)}-{pct(hi)}, n={p.generated.n})"
            f"{'':<3} | {pct(p.floor.accuracy):>6} | {pct(tid):>11}"
        )
        scored.append((p.generated.accuracy, tid, rate, p.generated.ci95))
    acc, tid, rate, ci = max(scored)
    overlap = [r for a, _, r, c in scored if r != rate and c[1] >= ci[0]]
    caveat = f"; not separable from it (95% intervals overlap): {', '.join(f'{r:g}' for r in overlap)}"
    caveat = caveat if overlap else ""
    say(f"best tag dropout: {rate:g} (part adherence {pct(acc)} at guidance {SWEEP_SCALE}{caveat})")


# --- the side-by-side table -------------------------------------------------------------------


def verdict(ok: bool) -> str:
    """How the pretrained side did against a target."""
    return "met" if ok else "missed"


Cell = Callable[[Measured], str]


def _tid(r: Measured, tag: str) -> str:
    t = r.report.tag_id[f"lyrics/{tag}"]
    return f"{pct(t.accuracy)} (n={t.n}, p={t.p_value:.2g})"


def _adh(r: Measured, name: str) -> str:
    a = label(r.best, name)
    return (
        f"{pct(a.generated.accuracy)} (floor {pct(a.floor.accuracy)}, ceiling {pct(a.ceiling.accuracy)}, "
        f"p={a.p_above_floor:.2g})"
    )


def _d2(r: Measured) -> float:
    return r.best.diversity.distinct_2


def _ceiling_gap(r: Measured) -> float:
    p = part(r.best)
    return p.ceiling.accuracy - p.generated.accuracy


def rows(results: list[Measured], real_d2: float, real_ppl: float) -> list[tuple[str, Cell, str, str, Cell]]:
    """(measure, cell per side, reference, target, pretrained verdict) for every figure."""
    return [*_run_rows(), *_conditioning_rows(results), *_text_rows(real_d2, real_ppl)]


def _run_rows() -> list[tuple[str, Cell, str, str, Cell]]:
    """How each side was run."""
    return [
        ("chosen guidance", lambda r: r.chosen, "", "", lambda r: ""),
        (
            "training",
            lambda r: f"{r.trained['steps']} steps, {r.trained['elapsed_s'] / 60:.1f} min",
            "",
            "",
            lambda r: "",
        ),
    ]


def _conditioning_rows(results: list[Measured]) -> list[tuple[str, Cell, str, str, Cell]]:
    """Whether the texts follow their tags: likelihood tag-ID and judged adherence."""
    chance = next(iter(results)).report.tag_id
    return [
        (
            "part tag-ID (likelihood)",
            lambda r: _tid(r, "part"),
            f"chance {pct(chance['lyrics/part'].chance, 0)}",
            ">= 60%",
            lambda r: verdict(r.report.tag_id["lyrics/part"].accuracy >= 0.60),
        ),
        (
            "artist tag-ID (likelihood)",
            lambda r: _tid(r, "artist"),
            f"chance {pct(chance['lyrics/artist'].chance, 0)}",
            ">= 35%",
            lambda r: verdict(r.report.tag_id["lyrics/artist"].accuracy >= 0.35),
        ),
        (
            "part adherence (structure-aware)",
            lambda r: _adh(r, "lyrics/part"),
            f"chance {pct(part(results[0].best).chance, 0)}",
            "within 5 pts of ceiling",
            lambda r: verdict(_ceiling_gap(r) <= 0.05),
        ),
        (
            "artist adherence",
            lambda r: _adh(r, "lyrics/artist"),
            f"chance {pct(label(results[0].best, 'lyrics/artist').chance, 0)}",
            "",
            lambda r: "",
        ),
    ]


def _text_rows(real_d2: float, real_ppl: float) -> list[tuple[str, Cell, str, str, Cell]]:
    """Whether the texts are clean, original, varied and fluent."""
    return [
        (
            "header leaks",
            lambda r: pct(r.best.header_leaks),
            "",
            "0%",
            lambda r: verdict(r.best.header_leaks == 0),
        ),
        (
            "clean stops",
            lambda r: pct(r.best.clean_stops),
            "",
            ">= 95%",
            lambda r: verdict(r.best.clean_stops >= CLEAN),
        ),
        (
            "copy rate (12+ word run)",
            lambda r: pct(r.best.copying.copy_rate, 2),
            "",
            "< 1%",
            lambda r: verdict(r.best.copying.copy_rate < 0.01),
        ),
        (
            "distinct-2",
            lambda r: f"{_d2(r):.3f} ({_d2(r) / real_d2 - 1:+.1%})",
            f"real {real_d2:.3f}",
            "within 5% of real",
            lambda r: verdict(abs(_d2(r) / real_d2 - 1) <= 0.05),
        ),
        (
            f"fluency: perplexity under {FLUENCY_BASE}",
            lambda r: f"{r.fluency:.1f} ({r.fluency / real_ppl:.2f}x real)",
            f"real held-out {real_ppl:.1f}",
            "<= 1.5x real",
            lambda r: verdict(r.fluency <= 1.5 * real_ppl),
        ),
    ]


def print_table(results: list[Measured], real_ppl: float) -> None:
    """Both sides' figures at their chosen scales, the reference and the pretrained side's targets."""
    real_d2 = results[0].report.generation.real_diversity.distinct_2
    table = [("measure", *[r.side for r in results], "reference", "target (pretrained)", "pretrained")]
    pretrained = next((r for r in results if r.side == "pretrained"), None)
    for name, cell, ref, target, judged in rows(results, real_d2, real_ppl):
        table.append(
            (name, *[cell(r) for r in results], ref, target, judged(pretrained) if pretrained else "")
        )
    print_aligned(table)
    say(
        "Adherence, leaks, stops, copying, distinct-2 and fluency at each side's chosen scale; "
        f"{results[0].report.generation.samples.per_condition} generations per condition."
    )
    for r in results:
        by = r.report.generation.by_guidance
        per = ", ".join(
            f"{s}: part {pct(part(b).generated.accuracy)} / stops {pct(b.clean_stops)}" for s, b in by.items()
        )
        say(f"{r.side} by guidance: {per}")


# --- main -------------------------------------------------------------------------------------


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's flags."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", default=str(CORPUS))
    p.add_argument(
        "--models",
        nargs="*",
        choices=list(SIDES),
        default=list(SIDES),
        help="sides to run (none: the sweep alone)",
    )
    p.add_argument("--minutes", type=float, default=20.0, help="training budget per model on this CPU")
    p.add_argument("--samples", type=int, default=40, help="generations per condition")
    p.add_argument("--tag-dropout", type=float, default=0.15)
    p.add_argument("--tag-id-examples", type=int, default=300)
    p.add_argument(
        "--pair-weight",
        type=float,
        default=None,
        help="the pretrained side's pairwise header loss (training/pairs.py; default: the recipe's)",
    )
    add_eval_flags(
        p, "weights as evaluated: auto = the int8 the bot loads; fp32 = the same weights dequantized"
    )
    p.add_argument("--sweep", type=float, nargs="*", default=[], help="tag-dropout rates to sweep")
    p.add_argument("--sweep-minutes", type=float, default=8.0, help="training budget per sweep run")
    p.add_argument("--work", default=str(REPO / ".linernotes" / "bench" / "quality"))
    p.add_argument("--retrain", action="store_true", help="train again even where a checkpoint exists")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Prepare once, measure each side (and the sweep), print the table and the RESULT line."""
    args = parse(argv)
    if not Path(args.corpus).is_dir():
        sys.exit(f"{args.corpus}: corpus not found (this benchmark needs the shared Genius sample)")
    use_repo_bases()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    prepare_once([args.corpus], Path(args.work) / "prepared", {}, say)
    results = [measure(SIDES[name], args) for name in args.models]
    real_ppl = add_fluency(results, args) if results else math.nan
    swept = sweep(args) if args.sweep else []
    if results:
        print_table(results, real_ppl)
    if swept:
        print_sweep(swept)
    say(f"\nwall time {(time.perf_counter() - started) / 60:.1f} min")
    pretrained = next((r for r in results if r.side == "pretrained"), None)
    if pretrained:
        say(
            f"RESULT part_tag_id_pretrained {pct(pretrained.report.tag_id['lyrics/part'].accuracy)} target >= 60%"
        )


if __name__ == "__main__":
    main()
