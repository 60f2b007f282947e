"""The copy guard: a compact index of the training text's word 8-grams, and a fast check against it.

Built at export time and stored in the checkpoint as ``copyguard.npy``: a sorted array of 64-bit
hashes, one per distinct 8-gram of lower-cased words in the training text, so its size is 8 bytes per
distinct 8-gram (about 8 bytes per training word). A generated text is rejected when it reproduces a
run of ``run`` or more consecutive training words (``run - 7`` consecutive indexed 8-grams) or when
more than ``max_share`` of its 8-grams occur in training. Checking costs microseconds per text
(bench/generate_throughput.py measures it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

N = 8
FILE = "copyguard.npy"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_MULT = np.uint64(0x100000001B3)  # FNV prime: the base of the polynomial rolling hash


def words(text: str) -> list[str]:
    """Lower-cased words (apostrophes kept inside words), the unit copies are measured in."""
    return _WORD.findall(text.lower())


@lru_cache(maxsize=200_000)
def _word_id(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


def ngram_hashes(text: str, n: int = N) -> np.ndarray:
    """Hashes of every n-gram of words in ``text`` (uint64, one per window, in order)."""
    ids = np.fromiter((_word_id(w) for w in words(text)), dtype=np.uint64)
    if len(ids) < n:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):  # wrap-around multiplication is the hash
        for j in range(n):
            h = h * _MULT + ids[j : len(ids) - n + 1 + j]
    return h


def build_index(texts: Iterable[str]) -> np.ndarray:
    """The sorted, de-duplicated 8-gram hashes of ``texts``."""
    parts = [ngram_hashes(t) for t in texts]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)


@dataclass(frozen=True)
class CopyCheck:
    """How much of one text occurs in training."""

    longest_run: int  # words in the longest run found in training (0 if none)
    share: float  # fraction of the text's 8-grams found in training
    copied: bool


@dataclass
class CopyGuard:
    """A loaded index with its thresholds."""

    index: np.ndarray
    run: int = 12
    max_share: float = 0.5

    @classmethod
    def load(cls, directory: Path, run: int = 12, max_share: float = 0.5) -> CopyGuard | None:
        """The index stored in a checkpoint, or None when it has none."""
        path = Path(directory) / FILE
        return cls(np.load(path), run, max_share) if path.is_file() else None

    def save(self, directory: Path) -> None:
        """Write the index into a checkpoint directory."""
        np.save(Path(directory) / FILE, self.index)

    def check(self, text: str) -> CopyCheck:
        """Compare one text against the index."""
        h = ngram_hashes(text)
        if not len(h) or not len(self.index):
            return CopyCheck(0, 0.0, False)
        at = np.searchsorted(self.index, h)
        hit = self.index[np.minimum(at, len(self.index) - 1)] == h
        longest = _longest_true_run(hit)
        run_words = longest + N - 1 if longest else 0
        share = float(hit.mean())
        return CopyCheck(run_words, share, run_words >= self.run or share > self.max_share)


def _longest_true_run(hit: np.ndarray) -> int:
    best = current = 0
    for h in hit.tolist():
        current = current + 1 if h else 0
        best = max(best, current)
    return best
