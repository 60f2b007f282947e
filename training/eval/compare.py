"""Two evaluations side by side, and which model wins each metric."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from linernotes.training.eval.adherence import LabelAdherence
from linernotes.training.eval.result import EvalReport

HIGHER, LOWER = "higher", "lower"


def headline(report: EvalReport) -> dict[str, tuple[float, str]]:
    """The metrics worth comparing, each with the direction that is better (at the last guidance scale)."""
    out: dict[str, tuple[float, str]] = {"test perplexity": (report.perplexity.overall, LOWER)}
    for name, e in report.tag_id.items():
        if e.n:
            out[f"tag-ID {name}"] = (e.accuracy, HIGHER)
    block = report.generation.last
    for name, a in block.adherence.items():
        if isinstance(a, LabelAdherence):
            out[f"adherence {name}"] = (a.generated.accuracy, HIGHER)
        elif a.generated.mae is not None and a.generated.corr is not None:
            out[f"adherence {name} MAE"] = (a.generated.mae, LOWER)
            out[f"adherence {name} corr"] = (a.generated.corr, HIGHER)
    out["clean stops"] = (block.clean_stops, HIGHER)
    out["header leaks"] = (block.header_leaks, LOWER)
    out["copy rate"] = (block.copying.copy_rate, LOWER)
    out["distinct-2"] = (block.diversity.distinct_2, HIGHER)
    out["self-BLEU"] = (block.diversity.self_bleu, LOWER)
    return out


def compare(a: EvalReport, b: EvalReport) -> list[dict[str, Any]]:
    """One row per metric both reports have: values, and the winner ("A", "B" or "tie")."""
    ha, hb = headline(a), headline(b)
    rows = []
    for name in [n for n in ha if n in hb]:
        (va, better), (vb, _) = ha[name], hb[name]
        if any(isinstance(v, float) and math.isnan(v) for v in (va, vb)) or math.isclose(
            va, vb, abs_tol=1e-9
        ):
            winner = "tie"
        else:
            winner = "A" if (va > vb) == (better == HIGHER) else "B"
        rows.append({"metric": name, "A": va, "B": vb, "better": better, "winner": winner})
    return rows


def write_comparison(a: EvalReport, b: EvalReport, path: Path) -> list[dict[str, Any]]:
    """``compare.md``: the side-by-side table and the tally."""
    rows = compare(a, b)
    wins = {w: sum(r["winner"] == w for r in rows) for w in ("A", "B", "tie")}
    lines = [
        f"# {a.model_id} (A) vs {b.model_id} (B)",
        "",
        "| metric | A | B | better | winner |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['metric']} | {r['A']:.4g} | {r['B']:.4g} | {r['better']} | {r['winner']} |" for r in rows
    ]
    lines += ["", f"A wins {wins['A']}, B wins {wins['B']}, {wins['tie']} tied.", ""]
    path.write_text("\n".join(lines))
    return rows
