"""The ranker: light linear judges stored in a checkpoint, to pick the most on-tag of several candidates.

Warm-up runs in the background, so it can afford to write ``k`` candidates for one cache slot and keep
the one these judges find closest to its tags (``Request.candidates``). A judge per (kind, tag) is
fitted at export on the run's training split (``training/ranker.py``) and stored here as plain arrays
(``ranker.npz``: no pickle, like the weights), so scoring needs numpy only:

- features: word unigram counts (lower-cased), sublinear (1 + log count), L2-normalised; the vocabulary
  is the words seen in at least two training texts;
- a classifier for genre, part and artist (its log-probability of the requested value), a regressor for
  the review score and the product rating (minus its distance from the requested value, in ``REGRESSED``
  units).

The quality benchmarks grade ranked output with judges of other features (character n-grams), never
with these: a ranking must not be graded by itself.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

RANKER_FILE = "ranker.npz"
WORD = re.compile(r"[a-z0-9']+")
# Regressed tags, and the miss that costs as much as a log-probability of -1 on a classified tag (a quarter
# of the value's span), so a score and a genre weigh alike in the sum.
REGRESSED = {("review", "score"): 2.5, ("product", "rating"): 1.0}


def features(texts: Sequence[str], vocab: Mapping[str, int]) -> np.ndarray:
    """(n, V) sublinear word counts, each row L2-normalised (a text with no known word is all zeros)."""
    out = np.zeros((len(texts), len(vocab)), dtype=np.float32)
    for i, text in enumerate(texts):
        for word, n in Counter(WORD.findall(text.lower())).items():
            j = vocab.get(word)
            if j is not None:
                out[i, j] = 1.0 + math.log(n)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


@dataclass
class LinearJudge:
    """One (kind, tag) judge: ``coef`` (C, V) and ``intercept`` (C,), C = len(classes), or 1 for a regressor."""

    kind: str
    tag: str
    classes: list[str] | None  # None: a regressor
    coef: np.ndarray
    intercept: np.ndarray

    def fit_score(self, x: np.ndarray, wanted: Any) -> np.ndarray:
        """(n,) how well each text's features ``x`` (n, V) fit the requested value; higher is better."""
        logits = x @ self.coef.T + self.intercept  # (n, C)
        if self.classes is None:
            return -np.abs(logits[:, 0] - float(wanted)) / REGRESSED[(self.kind, self.tag)]
        if str(wanted) not in self.classes:
            return np.zeros(len(x))  # a value the judge never saw says nothing
        logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        return logp[:, self.classes.index(str(wanted))]


@dataclass
class Ranker:
    """The judges of one checkpoint, over one vocabulary."""

    vocab: dict[str, int]
    judges: list[LinearJudge]

    def score(self, kind: str, tags: Mapping[str, Any], texts: Sequence[str]) -> np.ndarray:
        """(n,) how on-tag each text is for ``kind`` and ``tags``: the sum over the tags that have a judge."""
        total = np.zeros(len(texts))
        x = features(texts, self.vocab)
        for judge in self.judges:
            if judge.kind == kind and judge.tag in tags:
                total += judge.fit_score(x, tags[judge.tag])
        return total

    def describe(self) -> dict[str, Any]:
        """What the card says of this ranker."""
        return {
            "file": RANKER_FILE,
            "judges": [f"{j.kind}/{j.tag}" for j in self.judges],
            "features": "word unigrams",
            "words": len(self.vocab),
        }

    def save(self, directory: Path) -> None:
        """Write ``ranker.npz`` into a checkpoint directory."""
        meta = {
            "vocab": sorted(self.vocab, key=self.vocab.__getitem__),
            "judges": [{"kind": j.kind, "tag": j.tag, "classes": j.classes} for j in self.judges],
        }
        arrays = {f"coef{i}": j.coef for i, j in enumerate(self.judges)}
        arrays |= {f"intercept{i}": j.intercept for i, j in enumerate(self.judges)}
        np.savez_compressed(Path(directory) / RANKER_FILE, meta=np.array(json.dumps(meta)), **arrays)

    @classmethod
    def load(cls, directory: Path) -> Ranker | None:
        """The ranker stored in a checkpoint directory, or None (checkpoints exported before rankers)."""
        file = Path(directory) / RANKER_FILE
        if not file.is_file():
            return None
        with np.load(file, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            judges = [
                LinearJudge(j["kind"], j["tag"], j["classes"], z[f"coef{i}"], z[f"intercept{i}"])
                for i, j in enumerate(meta["judges"])
            ]
        return cls({w: i for i, w in enumerate(meta["vocab"])}, judges)
