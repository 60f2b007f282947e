"""Near-duplicate detection: texts that share most of their word shingles (MinHash LSH, then exact Jaccard).

Two texts are near duplicates when the Jaccard similarity of their word-pair sets (case and punctuation
aside) is at least ``THRESHOLD``: one changed word in a 30-word chorus still matches,
two reviews that share a template sentence do not. MinHash LSH (``datasketch``) finds the few candidates
worth comparing, so the cost stays near linear; each candidate is then checked with the exact Jaccard,
so a match is never a hashing accident.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasketch import MinHash

SHINGLE = 2  # words per shingle: pairs, so one changed word in a short chorus still matches
THRESHOLD = 0.8  # Jaccard similarity of shingle sets from which two texts are near duplicates
PERMUTATIONS = 128
# LSH bands x rows: a pair becomes a candidate with probability 1 - (1 - J**5)**23, which is 0.9999 at
# J = 0.8 and 0.05 at J = 0.3. The net is cast wide on purpose: the exact Jaccard then decides.
BANDS = (23, 5)
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = SHINGLE) -> frozenset[bytes]:
    """The text's word ``n``-grams, case and punctuation aside (all its words as one if fewer)."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    grams = (" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1)))
    return frozenset(g.encode() for g in grams)


def jaccard(a: frozenset[bytes], b: frozenset[bytes]) -> float:
    """Shared shingles over all shingles (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDuplicates:
    """Texts seen so far, each under a name; tells which of them a new text nearly repeats."""

    def __init__(self, threshold: float = THRESHOLD, remember_matches: bool = False) -> None:
        """``remember_matches``: a text that matched is remembered too (near duplicates that are kept, so
        chains of them stay together); otherwise only texts that matched nothing are."""
        # Imported here, not at the top: datasketch takes half a second, and every command imports prepare.
        from datasketch import MinHash, MinHashLSH

        self.threshold = threshold
        self.remember_matches = remember_matches
        self._sketch = MinHash
        self._lsh = MinHashLSH(num_perm=PERMUTATIONS, params=BANDS)
        self._seen: list[tuple[str, frozenset[bytes]]] = []  # (name, shingles), in the order seen
        # One set of hash permutations for every sketch (making them per text cost more than hashing).
        template = self._sketch(num_perm=PERMUTATIONS)
        self._permutations, self._scheme = template.permutations, template.scheme

    def match(self, name: str, text: str) -> tuple[str, float] | None:
        """The earliest remembered text that ``text`` nearly repeats, as (name, similarity), else None;
        ``text`` is remembered under ``name`` when it matched nothing (or always, with remember_matches)."""
        grams = shingles(text)
        sketch = self._sketch(num_perm=PERMUTATIONS, permutations=self._permutations, scheme=self._scheme)
        sketch.update_batch(grams)
        found = self._closest(grams, sketch)
        if found is None or self.remember_matches:
            self._lsh.insert(len(self._seen), sketch, check_duplication=False)
            self._seen.append((name, grams))
        return found

    def _closest(self, grams: frozenset[bytes], sketch: MinHash) -> tuple[str, float] | None:
        # LSH proposes candidates (a few, some below the threshold); the exact similarity decides.
        for i in sorted(self._lsh.query(sketch)):
            similarity = jaccard(grams, self._seen[i][1])
            if similarity >= self.threshold:
                return self._seen[i][0], similarity
        return None
