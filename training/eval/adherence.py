"""Condition adherence: do judges read the requested tag back out of the generated text?

Each figure comes with its ceiling (the same judge on held-out real text) and its floor (the judge
on text generated with the tags removed, labelled with what was asked), so 0.31 means something.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import pearsonr

from data.format import Record
from training.eval.conditions import Sample
from training.eval.judges import Judge
from training.eval.stats import above, wilson


def _accuracy(judged: list[str], wanted: list[str]) -> dict[str, Any]:
    hits = sum(a == b for a, b in zip(judged, wanted, strict=True))
    n = len(wanted)
    return {"n": n, "hits": hits, "accuracy": hits / n if n else float("nan"), "ci95": list(wilson(hits, n))}


def _regression(judged: list[float], wanted: list[float]) -> dict[str, Any]:
    a, b = np.array(judged), np.array(wanted)
    if len(a) < 3:
        return {"n": len(a)}
    corr = float(pearsonr(b, a).statistic) if a.std() > 0 and b.std() > 0 else 0.0
    return {"n": len(a), "mae": float(np.abs(a - b).mean()), "corr": corr}


def ceiling(judge: Judge, test: list[Record]) -> dict[str, Any]:
    """The judge on held-out real text of its kind: the best generated text could hope for."""
    rows = [r for r in test if r.kind == judge.kind and judge.tag in r.tags]
    if judge.labels is not None:
        rows = [r for r in rows if str(r.tags[judge.tag]) in set(judge.labels)]
        return _accuracy(judge.predict([r.text for r in rows]), [str(r.tags[judge.tag]) for r in rows])
    return _regression(judge.predict([r.text for r in rows]), [float(r.tags[judge.tag]) for r in rows])


def _pick(samples: list[Sample], judge: Judge) -> tuple[list[str], list[Any]]:
    """Texts and requested values of the samples a judge checks (texts that came out empty count)."""
    chosen = [s for s in samples if s.condition.kind == judge.kind and judge.tag in s.condition.checks]
    wanted = [s.condition.tags[judge.tag] for s in chosen]
    return [s.text for s in chosen], wanted


def adherence(
    judge: Judge, generated: list[Sample], floor: list[Sample], test: list[Record]
) -> dict[str, Any]:
    """Generated vs floor vs ceiling for one judge; classifiers also get a confusion matrix."""
    texts, wanted = _pick(generated, judge)
    floor_texts, floor_wanted = _pick(floor, judge)
    out: dict[str, Any] = {"kind": judge.kind, "tag": judge.tag, "ceiling": ceiling(judge, test)}
    if judge.labels is None:
        judged = judge.predict(texts)
        out |= {
            "generated": _regression(judged, [float(w) for w in wanted]),
            "floor": _regression(judge.predict(floor_texts), [float(w) for w in floor_wanted]),
            "pairs": [[float(w), j] for w, j in zip(wanted, judged, strict=True)],
        }
        return out
    judged = judge.predict(texts)
    gen = _accuracy(judged, [str(w) for w in wanted])
    flo = _accuracy(judge.predict(floor_texts), [str(w) for w in floor_wanted])
    out |= {
        "generated": gen,
        "floor": flo,
        "chance": 1 / len(judge.labels),
        "p_above_floor": above(gen["hits"], gen["n"], flo["hits"], flo["n"]),
        "labels": judge.labels,
        "confusion": confusion(judged, [str(w) for w in wanted], judge.labels),
    }
    return out


def confusion(judged: list[str], wanted: list[str], labels: list[str]) -> list[list[int]]:
    """Counts: row = requested label, column = judged label."""
    index = {label: i for i, label in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for j, w in zip(judged, wanted, strict=True):
        if w in index and j in index:
            m[index[w]][index[j]] += 1
    return m
