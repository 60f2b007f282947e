"""Fit the ranker a checkpoint carries (``model/rank.py``) on a run's training split, at export."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from linernotes.data.format import Record
from linernotes.model.rank import REGRESSED, WORD, LinearJudge, Ranker, features

log = logging.getLogger(__name__)
CLASSIFIED = {"review": ("genre",), "lyrics": ("part", "artist")}
MIN_EXAMPLES = 10  # fewer examples of a (kind, tag) than this: no judge for it
MAX_VOCAB = 20_000


def vocabulary(texts: Sequence[str]) -> dict[str, int]:
    """Words found in at least two texts (at most ``MAX_VOCAB``, most common first)."""
    df = Counter(w for t in texts for w in set(WORD.findall(t.lower())))
    kept = [w for w, n in df.most_common(MAX_VOCAB) if n >= 2]
    return {w: i for i, w in enumerate(sorted(kept))}


def fit_ranker(records: Sequence[Record]) -> Ranker | None:
    """A judge per (kind, tag) with enough labelled training texts; None when there is none."""
    vocab = vocabulary([r.text for r in records])
    judges = []
    for kind, tag in [*((k, t) for k, ts in CLASSIFIED.items() for t in ts), *REGRESSED]:
        rows = [r for r in records if r.kind == kind and tag in r.tags]
        judge = _fit(kind, tag, rows, vocab)
        if judge is not None:
            judges.append(judge)
    log.info("ranker: %d judges over %d words", len(judges), len(vocab))
    return Ranker(vocab, judges) if judges and vocab else None


def _fit(kind: str, tag: str, rows: list[Record], vocab: dict[str, int]) -> LinearJudge | None:
    from sklearn.linear_model import LogisticRegression, Ridge

    if len(rows) < MIN_EXAMPLES:
        return None
    x = features([r.text for r in rows], vocab)
    if (kind, tag) in REGRESSED:
        model = Ridge(alpha=1.0).fit(x, [float(r.tags[tag]) for r in rows])
        return LinearJudge(
            kind, tag, None, model.coef_[None, :].astype(np.float32), np.array([model.intercept_])
        )
    labels = [str(r.tags[tag]) for r in rows]
    if len(set(labels)) < 2:
        return None
    model = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced").fit(x, labels)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        # scikit-learn keeps one row for two classes (class 1 against class 0): make it the softmax's two.
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    classes = [str(c) for c in model.classes_]
    return LinearJudge(kind, tag, classes, coef.astype(np.float32), intercept.astype(np.float32))
