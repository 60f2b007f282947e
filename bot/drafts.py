"""How many drafts a cache miss writes: one, or the card's ranked drafts when nobody would wait for them.

Warm-up writes the card's drafts per cached text (``Card.candidates``) and keeps the one the ranker finds
most on-tag. A person's cache miss writes one, so it answers as soon as one is written; but when the
generator has nothing else to do, the extra drafts delay nobody else. So a miss on an idle queue writes as
many of the card's drafts as this kind's recent misses say fit in ``budget`` seconds, counted as if each
draft ran alone (they run in one batch, which costs less): the best of 4 for a song part the worker
writes in about 2 s, one draft for a review that already takes about 18 s. A kind not yet timed, or a
busy queue, gets one draft.
"""

from __future__ import annotations

from linernotes.model.generator import Result


class MissDrafts:
    """Drafts per cache miss, from the card's drafts per kind, the queue and each kind's last miss time."""

    def __init__(self, budget: float) -> None:
        self.budget = budget  # seconds a person may wait for ranked drafts; 0: a miss always writes one
        self._per_draft: dict[str, float] = {}  # kind -> seconds per draft in its last miss

    def drafts(self, kind: str, card_drafts: int, idle: bool) -> int:
        """Drafts for a miss of ``kind``: up to ``card_drafts`` when ``idle`` and they fit the budget."""
        per = self._per_draft.get(kind)
        if card_drafts <= 1 or not idle or per is None:  # ``observe`` keeps only times above 0
            return 1
        return max(1, min(card_drafts, int(self.budget / per)))

    def observe(self, result: Result) -> None:
        """Time a finished miss: its seconds per draft (a job batched with others counts their time too,
        so a busy moment only makes later misses write fewer)."""
        if result.seconds > 0:
            self._per_draft[result.request.kind] = result.seconds / max(1, result.ranked)
