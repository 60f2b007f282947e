"""Condition adherence: do judges read the requested tag back out of the generated text?

Each figure comes with its ceiling (the same judge on held-out real text) and its floor (the judge
on text generated with the tags removed, labelled with what was asked), so 0.31 means something.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from linernotes.data.format import Record
from linernotes.training.eval.conditions import Sample
from linernotes.training.eval.judges import Judge
from linernotes.training.eval.stats import Proportion, above, proportion, spearman_ci


@dataclass(frozen=True)
class Regression:
    """How close judged scores came to requested ones (None with fewer than 3 texts): mean absolute error,
    Pearson ``corr`` and Spearman ``spearman`` (rank) correlation between requested and judged, with a
    bootstrap 95% interval for the latter."""

    n: int
    mae: float | None = None
    corr: float | None = None
    spearman: float | None = None
    spearman_ci95: tuple[float, float] | None = None


@dataclass(frozen=True)
class Ordinal:
    """A classifier judge whose labels are numbers (rating) read as a score: requested against judged."""

    ceiling: Regression
    generated: Regression
    floor: Regression


@dataclass(frozen=True)
class LabelAdherence:
    """A classifier judge (genre, part, artist, rating): its accuracy on generated text, floor and ceiling."""

    kind: str
    tag: str
    ceiling: Proportion
    generated: Proportion
    floor: Proportion
    chance: float
    p_above_floor: float
    labels: list[str]
    confusion: list[list[int]]  # row: requested label, column: judged label
    ordinal: Ordinal | None = None  # numeric labels (rating): the same readings as a score


@dataclass(frozen=True)
class ScoreAdherence:
    """The score judge: requested against judged score, on generated text, floor and ceiling."""

    kind: str
    tag: str
    ceiling: Regression
    generated: Regression
    floor: Regression
    pairs: list[tuple[float, float]]  # (requested, judged) per generated text


Adherence = LabelAdherence | ScoreAdherence


def _accuracy(judged: list[str], wanted: list[str]) -> Proportion:
    return proportion(sum(a == b for a, b in zip(judged, wanted, strict=True)), len(wanted))


def _regression(judged: list[float], wanted: list[float]) -> Regression:
    a, b = np.array(judged), np.array(wanted)
    if len(a) < 3:
        return Regression(len(a))
    varied = a.std() > 0 and b.std() > 0
    corr = float(pearsonr(b, a).statistic) if varied else 0.0
    rank = float(spearmanr(b, a).statistic) if varied else 0.0
    return Regression(len(a), float(np.abs(a - b).mean()), corr, rank, spearman_ci(b, a) if varied else None)


def _held(judge: Judge, test: list[Record]) -> tuple[list[str], list[Any]]:
    """Held-out real texts of the judge's kind carrying its tag (one of its labels), and their tag values."""
    rows = [r for r in test if r.kind == judge.kind and judge.tag in r.tags]
    if judge.labels is not None:
        rows = [r for r in rows if str(r.tags[judge.tag]) in set(judge.labels)]
    return [r.text for r in rows], [r.tags[judge.tag] for r in rows]


def ceiling(judge: Judge, test: list[Record]) -> Proportion | Regression:
    """The judge on held-out real text of its kind: the best generated text could hope for."""
    texts, wanted = _held(judge, test)
    if judge.labels is not None:
        return _accuracy(judge.predict(texts), [str(w) for w in wanted])
    return _regression(judge.predict(texts), [float(w) for w in wanted])


def _numeric(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


def ordinal(judge: Judge, generated: list[Sample], floor: list[Sample], test: list[Record]) -> Ordinal | None:
    """A classifier judge with numeric labels (rating) read as a score regressor: ceiling, generated and
    floor as requested-against-judged MAE and correlations (None for labels that are not numbers)."""
    if judge.labels is None or not _numeric(judge.labels):
        return None

    def read(texts: list[str], wanted: list[Any]) -> Regression:
        return _regression([float(v) for v in judge.predict(texts)], [float(w) for w in wanted])

    return Ordinal(read(*_held(judge, test)), read(*_pick(generated, judge)), read(*_pick(floor, judge)))


def _pick(samples: list[Sample], judge: Judge) -> tuple[list[str], list[Any]]:
    """Texts and requested values of the samples a judge checks (texts that came out empty count)."""
    chosen = [s for s in samples if s.condition.kind == judge.kind and judge.tag in s.condition.checks]
    wanted = [s.condition.tags[judge.tag] for s in chosen]
    return [s.text for s in chosen], wanted


def adherence(judge: Judge, generated: list[Sample], floor: list[Sample], test: list[Record]) -> Adherence:
    """Generated vs floor vs ceiling for one judge; classifiers also get a confusion matrix."""
    texts, wanted = _pick(generated, judge)
    floor_texts, floor_wanted = _pick(floor, judge)
    judged = judge.predict(texts)
    if judge.labels is None:
        return ScoreAdherence(
            judge.kind,
            judge.tag,
            ceiling=ceiling(judge, test),
            generated=_regression(judged, [float(w) for w in wanted]),
            floor=_regression(judge.predict(floor_texts), [float(w) for w in floor_wanted]),
            pairs=[(float(w), j) for w, j in zip(wanted, judged, strict=True)],
        )
    gen = _accuracy(judged, [str(w) for w in wanted])
    flo = _accuracy(judge.predict(floor_texts), [str(w) for w in floor_wanted])
    return LabelAdherence(
        judge.kind,
        judge.tag,
        ceiling=ceiling(judge, test),
        generated=gen,
        floor=flo,
        chance=1 / len(judge.labels),
        p_above_floor=above(gen.hits, gen.n, flo.hits, flo.n),
        labels=judge.labels,
        confusion=confusion(judged, [str(w) for w in wanted], judge.labels),
        ordinal=ordinal(judge, generated, floor, test),
    )


def confusion(judged: list[str], wanted: list[str], labels: list[str]) -> list[list[int]]:
    """Counts: row = requested label, column = judged label."""
    index = {label: i for i, label in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for j, w in zip(judged, wanted, strict=True):
        if w in index and j in index:
            m[index[w]][index[j]] += 1
    return m
