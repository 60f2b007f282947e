"""``report.md``: the evaluation as tables a person can read, with the plots inline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.training.eval.adherence import LabelAdherence, Regression, ScoreAdherence
from linernotes.training.eval.diversity import Diversity
from linernotes.training.eval.likelihood import TagId
from linernotes.training.eval.result import AtScale, EvalReport
from linernotes.training.eval.stats import Proportion


def _f(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_f(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return lines + [""]


def _acc(entry: Proportion | TagId) -> str:
    if not entry.n:
        return "-"
    lo, hi = entry.ci95
    return f"{_pct(entry.accuracy)} [{_pct(lo)}, {_pct(hi)}] (n={entry.n})"


def _perplexity(report: EvalReport) -> list[str]:
    rows = [r for r in report.perplexity.rows if r.tokens]
    held = report.held_out
    out = [f"## Perplexity on the {held.split} split ({held.examples} examples)", ""]
    return out + _table(
        ["kind", "tag", "value", "tokens", "perplexity"],
        [[r.kind, r.tag or "(all)", r.value or "", r.tokens, r.ppl] for r in rows[:40]],
    )


def _tag_id(report: EvalReport) -> list[str]:
    out = [
        "## Likelihood tag-ID",
        "",
        "Each real held-out text is scored under every candidate value of one tag (other tags as they are); "
        "how often does the true value give it the highest likelihood?",
        "",
    ]
    rows = [
        [name, _acc(e), _pct(e.chance), _f(e.p_value, 4), _f(e.mean_rank, 2), e.candidates]
        for name, e in report.tag_id.items()
        if e.n
    ]
    return out + _table(
        ["tag", "true value ranked first", "chance", "p (> chance)", "mean rank", "candidates"], rows
    )


def _adherence(report: EvalReport) -> list[str]:
    g = report.generation
    out = [
        "## Condition adherence",
        "",
        f"{g.samples.per_condition} generations per condition, {g.samples.conditions} "
        "conditions. *Floor*: the same judge on text generated with the tags removed; *ceiling*: on held-out real text.",
        "",
    ]
    for scale, block in g.by_guidance.items():
        labels = [e for e in block.adherence.values() if isinstance(e, LabelAdherence)]
        scores = [e for e in block.adherence.values() if isinstance(e, ScoreAdherence)]
        out += [f"### Guidance {scale}", ""]
        out += _table(
            ["judge", "generated", "floor", "ceiling", "chance", "p (> floor)"],
            [
                [f"{e.kind}/{e.tag}", _acc(e.generated), _acc(e.floor), _acc(e.ceiling)]
                + [_pct(e.chance), _f(e.p_above_floor, 4)]
                for e in labels
            ],
        )
        # Score judges, and classifier judges with numeric labels (ratings) read as scores.
        fits = [(f"{e.kind}/{e.tag}", e) for e in scores]
        fits += [(f"{e.kind}/{e.tag} (as a score)", e.ordinal) for e in labels if e.ordinal is not None]
        if fits:
            out += _table(
                ["score judge", "MAE", "corr / Spearman", "floor MAE", "floor corr / Spearman", "ceiling MAE"]
                + ["ceiling corr / Spearman"],
                [[name, *_fit(e.generated), *_fit(e.floor), *_fit(e.ceiling)] for name, e in fits],
            )
    return out


def _fit(r: Regression) -> list[str]:
    return [_f(r.mae, 2), f"{_f(r.corr)} / {_f(r.spearman)}"]


@dataclass(frozen=True)
class Column:
    """One column of the health table: its heading, a guidance scale's cell, and real text's (if any)."""

    heading: str
    cell: Callable[[AtScale], str]
    real: Callable[[Diversity], str] | None = None


# The health table, column by column; "{run}" in a heading is the copy guard's run length.
HEALTH = [
    Column("clean stops", lambda b: _pct(b.clean_stops)),
    Column("header leaks", lambda b: _pct(b.header_leaks)),
    Column("empty", lambda b: _pct(b.empty)),
    Column("words", lambda b: _f(b.mean_words, 1)),
    Column("copy rate ({run}+ words)", lambda b: _pct(b.copying.copy_rate)),
    Column("8-gram overlap", lambda b: _f(b.copying.overlap_8gram.mean)),
    Column("distinct-1", lambda b: _f(b.diversity.distinct_1), lambda d: _f(d.distinct_1)),
    Column("distinct-2", lambda b: _f(b.diversity.distinct_2), lambda d: _f(d.distinct_2)),
    Column("distinct-3", lambda b: _f(b.diversity.distinct_3), lambda d: _f(d.distinct_3)),
    Column("self-BLEU", lambda b: _f(b.diversity.self_bleu), lambda d: _f(d.self_bleu)),
    Column("duplicates", lambda b: _pct(b.diversity.duplicates.share), lambda d: _pct(d.duplicates.share)),
]


def _health(report: EvalReport) -> list[str]:
    g = report.generation
    rows = [[scale] + [c.cell(block) for c in HEALTH] for scale, block in g.by_guidance.items()]
    rows.append(["real text"] + [c.real(g.real_diversity) if c.real else "" for c in HEALTH])
    run = g.last.copying.run
    out = ["## Stops, copying and diversity", ""]
    out += _table(["guidance"] + [c.heading.format(run=run) for c in HEALTH], rows)
    if g.last.copying.worst:
        out += [f"Closest to training text (guidance {g.last_scale}):", ""]
        for w in g.last.copying.worst:
            out += [
                f"- {w.longest_run} words in a row, {_pct(w.share)} of 8-grams: “{w.text[:200]}”",
                f"  - training: “{(w.match or '')[:200]}”",
            ]
        out.append("")
    return out


def _people(report: EvalReport) -> list[str]:
    out = []
    if report.ratings is not None:
        out += ["## Human ratings (bot reactions)", ""]
        out += (
            _table(
                ["kind", "tag", "value", "generations", "👍", "👎", "approval"],
                [
                    [r.kind, r.tag or "(all)", r.value, r.generations, r.up, r.down, _pct(r.approval)]
                    for r in report.ratings
                ],
            )
            if report.ratings
            else ["No rated generations yet.", ""]
        )
    if (d := report.cache_duplicates) is not None:
        out += [
            f"Warmed cache: {d.duplicates} of {d.n} cached texts repeat another of the same key ({_pct(d.share)}).",
            "",
        ]
    return out


def _contrast_said(contrast: dict[str, float]) -> str:
    """The kinds generated with a contrast weight, for the report's first line (empty when none was)."""
    used = {k: x for k, x in contrast.items() if x}
    return f" · contrast {', '.join(f'{k} {x:g}' for k, x in used.items())}" if used else ""


def _penalty_said(penalty: dict[str, float]) -> str:
    """Each kind's repetition penalty, for the report's first line (empty when none was recorded)."""
    return f" · repetition penalty {', '.join(f'{k} {x:g}' for k, x in penalty.items())}" if penalty else ""


def write_markdown(report: EvalReport, path: Path) -> None:
    """Render the report as Markdown with its plots."""
    g = report.generation
    lines = [
        f"# Evaluation of {report.model_id}",
        "",
        f"{report.created} · checkpoint `{report.checkpoint}` · guidance {', '.join(f'{x:g}' for x in g.guidance)} "
        f"(card defaults: {', '.join(f'{k} {x:g}' for k, x in g.default_guidance.items())})"
        + _contrast_said(g.contrast)
        + _penalty_said(g.repetition_penalty),
        "",
    ]
    lines += _perplexity(report) + _tag_id(report) + _adherence(report) + _health(report) + _people(report)
    if report.plots:
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in report.plots.items()] + [""]
    path.write_text("\n".join(lines))
