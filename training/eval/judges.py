"""Light judges trained on real text: is this a Metal review, a chorus, a 3.0? (scikit-learn).

A judge per (kind, tag): TF-IDF word and character n-grams (or characters alone: ``FEATURES`` in
``training/eval/config.py``) into a logistic regression for categorical tags (genre, part, artist,
rating), into ridge regression for review scores. The part judge also
sees the text's *structure* (line count and length, repeated lines and hooks, rhyme density), which
words alone miss: a chorus is short and repeats itself. Judges fit in seconds and are cached beside
the report, keyed by a fingerprint of the training split.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from linernotes.data.format import Record

log = logging.getLogger(__name__)
JUDGE_VERSION = 1
CLASSIFIED = ("genre", "part", "artist", "rating")
_WORD = re.compile(r"[a-z']+")


def structure_features(text: str) -> list[float]:
    """Shape of a text: lines, their length, repetition of lines and hooks, and rhyme density."""
    lines = [ln.strip().lower() for ln in text.splitlines() if ln.strip()]
    n = len(lines) or 1
    words = [w for ln in lines for w in _WORD.findall(ln)]
    counts = Counter(lines)
    repeated_lines = sum(c for c in counts.values() if c > 1) / n
    trigrams = Counter(zip(words, words[1:], words[2:], strict=False))
    hooks = sum(c for c in trigrams.values() if c > 1) / max(1, len(words) - 2)
    ends = [_WORD.findall(ln)[-1] for ln in lines if _WORD.findall(ln)]
    rhymes = sum(a != b and a[-2:] == b[-2:] for a, b in itertools.pairwise(ends))
    return [
        float(np.log1p(len(lines))),
        float(np.log1p(len(words))),
        len(words) / n,
        repeated_lines,
        len(counts) / n,
        hooks,
        rhymes / max(1, len(ends) - 1),
    ]


class Structure(BaseEstimator, TransformerMixin):
    """``structure_features`` as a scikit-learn transformer (texts in, an (n, 7) array out)."""

    def fit(self, texts: list[str], y: Any = None) -> Structure:
        """Nothing to learn."""
        return self

    def transform(self, texts: list[str]) -> np.ndarray:
        """One row of structure features per text."""
        return np.array([structure_features(t) for t in texts])


def _features(structure: bool, features: str) -> FeatureUnion:
    parts: list[tuple[str, Any]] = [
        (
            "chars",
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True, max_features=50_000
            ),
        ),
    ]
    if features == "words+chars":
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000)
        parts.insert(0, ("words", words))
    if structure:
        parts.append(("structure", Pipeline([("f", Structure()), ("scale", StandardScaler())])))
    return FeatureUnion(parts)


@dataclass
class Judge:
    """A fitted judge for one (kind, tag): ``labels`` for classifiers, None for the score regressor."""

    kind: str
    tag: str
    pipeline: Pipeline
    labels: list[str] | None
    structure: bool
    trained_on: int

    def predict(self, texts: list[str]) -> list[Any]:
        """The judged label (or score) of each text."""
        if not texts:
            return []
        out = self.pipeline.predict(texts)
        return [float(v) for v in out] if self.labels is None else [str(v) for v in out]


def fit_judge(
    kind: str, tag: str, records: list[Record], labels: list[str] | None, features: str = "words+chars"
) -> Judge | None:
    """Fit one judge on the records carrying ``tag`` (restricted to ``labels``) on ``features`` (one of
    ``FEATURES``); None if too few."""
    if labels is None:
        rows = [(r.text, float(r.tags[tag])) for r in records if r.kind == kind and tag in r.tags]
        model: Any = Ridge(alpha=1.0)
    else:
        keep = set(labels)
        rows = [
            (r.text, str(r.tags[tag])) for r in records if r.kind == kind and str(r.tags.get(tag)) in keep
        ]
        model = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced")
        if len({y for _, y in rows}) < 2:
            return None
    if len(rows) < 10:
        return None
    structure = tag == "part"
    pipeline = Pipeline([("features", _features(structure, features)), ("model", model)])
    texts, ys = zip(*rows, strict=True)
    pipeline.fit(list(texts), list(ys))
    fitted = None if labels is None else [str(c) for c in pipeline.classes_]
    return Judge(kind, tag, pipeline, fitted, structure, len(rows))


def load_or_fit(
    path: Path,
    fingerprint: str,
    wanted: dict[tuple[str, str], list[str] | None],
    records: list[Record],
    features: str = "words+chars",
) -> dict[tuple[str, str], Judge]:
    """The judges for ``wanted`` (kind, tag) -> labels, from the cache when it matches, else fitted."""
    key = {
        "version": JUDGE_VERSION,
        "data": fingerprint,
        "wanted": sorted(map(repr, wanted.items())),
        "features": features,
    }
    if path.is_file():
        cached = joblib.load(path)
        if cached.get("key") == key:
            log.info("judges: reusing %s", path)
            return cached["judges"]
    judges = {}
    for (kind, tag), labels in wanted.items():
        judge = fit_judge(kind, tag, records, labels, features)
        if judge is not None:
            judges[(kind, tag)] = judge
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"key": key, "judges": judges}, path)
    return judges
