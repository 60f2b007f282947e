"""``report.md``: the evaluation as tables a person can read, with the plots inline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


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


def _acc(entry: dict[str, Any]) -> str:
    if not entry.get("n"):
        return "-"
    lo, hi = entry["ci95"]
    return f"{_pct(entry['accuracy'])} [{_pct(lo)}, {_pct(hi)}] (n={entry['n']})"


def _perplexity(report: dict[str, Any]) -> list[str]:
    rows = [r for r in report["perplexity"]["rows"] if r["tokens"]]
    out = [
        f"## Perplexity on the {report['held_out']['split']} split ({report['held_out']['examples']} examples)",
        "",
    ]
    return out + _table(
        ["kind", "tag", "value", "tokens", "perplexity"],
        [[r["kind"], r["tag"] or "(all)", r["value"] or "", r["tokens"], r["ppl"]] for r in rows[:40]],
    )


def _tag_id(report: dict[str, Any]) -> list[str]:
    out = [
        "## Likelihood tag-ID",
        "",
        "Each real held-out text is scored under every candidate value of one tag (other tags as they are); "
        "how often does the true value give it the highest likelihood?",
        "",
    ]
    rows = [
        [name, _acc(e), _pct(e["chance"]), _f(e["p_value"], 4), _f(e["mean_rank"], 2), e["candidates"]]
        for name, e in report["tag_id"].items()
        if e.get("n")
    ]
    return out + _table(
        ["tag", "true value ranked first", "chance", "p (> chance)", "mean rank", "candidates"], rows
    )


def _adherence(report: dict[str, Any]) -> list[str]:
    out = [
        "## Condition adherence",
        "",
        f"{report['samples']['per_condition']} generations per condition, {report['samples']['conditions']} "
        "conditions. *Floor*: the same judge on text generated with the tags removed; *ceiling*: on held-out real text.",
        "",
    ]
    for scale, block in report["by_guidance"].items():
        rows, reg = [], []
        for name, e in block["adherence"].items():
            if "confusion" in e:
                rows.append(
                    [
                        name,
                        _acc(e["generated"]),
                        _acc(e["floor"]),
                        _acc(e["ceiling"]),
                        _pct(e["chance"]),
                        _f(e["p_above_floor"], 4),
                    ]
                )
            else:
                g, fl, c = e["generated"], e["floor"], e["ceiling"]
                reg.append(
                    [
                        name,
                        _f(g.get("mae"), 2),
                        _f(g.get("corr")),
                        _f(fl.get("mae"), 2),
                        _f(fl.get("corr")),
                        _f(c.get("mae"), 2),
                        _f(c.get("corr")),
                    ]
                )
        out += [f"### Guidance {scale}", ""]
        out += _table(["judge", "generated", "floor", "ceiling", "chance", "p (> floor)"], rows)
        if reg:
            out += _table(
                ["score judge", "MAE", "corr", "floor MAE", "floor corr", "ceiling MAE", "ceiling corr"], reg
            )
    return out


def _health(report: dict[str, Any]) -> list[str]:
    out = ["## Stops, copying and diversity", ""]
    rows = []
    for scale, b in report["by_guidance"].items():
        c, d = b["copying"], b["diversity"]
        rows.append(
            [
                scale,
                _pct(b["clean_stops"]),
                _pct(b["header_leaks"]),
                _pct(b["empty"]),
                _f(b["mean_words"], 1),
                _pct(c["copy_rate"]),
                _f(c["overlap_8gram"]["mean"]),
                _f(d["distinct_1"]),
                _f(d["distinct_2"]),
                _f(d["distinct_3"]),
                _f(d["self_bleu"]),
                _pct(d["duplicates"]["share"]),
            ]
        )
    real = report["real_diversity"]
    rows.append(
        [
            "real text",
            "",
            "",
            "",
            "",
            "",
            "",
            _f(real["distinct_1"]),
            _f(real["distinct_2"]),
            _f(real["distinct_3"]),
            _f(real["self_bleu"]),
            _pct(real["duplicates"]["share"]),
        ]
    )
    out += _table(
        [
            "guidance",
            "clean stops",
            "header leaks",
            "empty",
            "words",
            f"copy rate ({next(iter(report['by_guidance'].values()))['copying']['run']}+ words)",
            "8-gram overlap",
            "distinct-1",
            "distinct-2",
            "distinct-3",
            "self-BLEU",
            "duplicates",
        ],
        rows,
    )
    last = report["by_guidance"][f"{report['guidance'][-1]:g}"]["copying"]["worst"]
    if last:
        out += ["Closest to training text (guidance " + f"{report['guidance'][-1]:g}):", ""]
        for w in last:
            out += [
                f"- {w['longest_run']} words in a row, {_pct(w['share'])} of 8-grams: “{w['text'][:200]}”",
                f"  - training: “{(w['match'] or '')[:200]}”",
            ]
        out.append("")
    return out


def _people(report: dict[str, Any]) -> list[str]:
    out = []
    if "ratings" in report:
        out += ["## Human ratings (bot reactions)", ""]
        out += (
            _table(
                ["kind", "tag", "value", "generations", "👍", "👎", "approval"],
                [
                    [
                        r["kind"],
                        r["tag"] or "(all)",
                        r["value"],
                        r["generations"],
                        r["up"],
                        r["down"],
                        _pct(r["approval"]),
                    ]
                    for r in report["ratings"]
                ],
            )
            if report["ratings"]
            else ["No rated generations yet.", ""]
        )
    if "cache_duplicates" in report:
        d = report["cache_duplicates"]
        out += [
            f"Warmed cache: {d['duplicates']} of {d['n']} cached texts repeat another of the same key ({_pct(d['share'])}).",
            "",
        ]
    return out


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """Render the report as Markdown with its plots."""
    lines = [
        f"# Evaluation of {report['model_id']}",
        "",
        f"{report['created']} · checkpoint `{report['checkpoint']}` · guidance {', '.join(f'{g:g}' for g in report['guidance'])} "
        f"(card default {report['default_guidance']:g})",
        "",
    ]
    lines += _perplexity(report) + _tag_id(report) + _adherence(report) + _health(report) + _people(report)
    if report["plots"]:
        lines += ["## Plots", ""] + [f"![{name}]({file})" for name, file in report["plots"].items()] + [""]
    path.write_text("\n".join(lines))
