"""What the model itself believes: test perplexity per tag value, and likelihood tag-ID.

Both score token sequences with the model's loss on everything after a prefix (the header), the
same targets training used (body and end marker, never the header).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from scipy.stats import binomtest

from linernotes.data.format import Record, escape_body, header, normalize_tags
from linernotes.training.eval.stats import NAN, wilson
from linernotes.training.packing import encode, segments

Sequence = tuple[list[int], int]  # (token ids, number of leading prefix ids that are not scored)
Scorer = Callable[[list[Sequence]], list[tuple[float, int]]]


def nll_scorer(model, batch_size: int) -> Scorer:
    """A function giving (summed negative log-likelihood, scored tokens) for each sequence."""

    def score(seqs: list[Sequence]) -> list[tuple[float, int]]:
        out: list[tuple[float, int]] = [(0.0, 0)] * len(seqs)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))  # similar lengths share a batch
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                for i, value in zip(idx, _score_batch(model, [seqs[i] for i in idx]), strict=True):
                    out[i] = value
        return out

    return score


def _score_batch(model, seqs: list[Sequence]) -> list[tuple[float, int]]:
    device = next(model.parameters()).device
    width = max(len(ids) for ids, _ in seqs)
    ids = torch.zeros((len(seqs), width), dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    scored = torch.zeros((len(seqs), width), dtype=torch.bool)  # which target positions count
    for b, (seq, n_prefix) in enumerate(seqs):
        ids[b, : len(seq)] = torch.tensor(seq)
        mask[b, : len(seq)] = 1
        scored[b, max(n_prefix, 1) : len(seq)] = True
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
    # Position t predicts token t+1: (batch, width-1, V) against (batch, width-1).
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    target_logp = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)
    keep = scored[:, 1:]
    nll = -(target_logp * keep).sum(-1)
    return [(float(n), int(k)) for n, k in zip(nll, keep.sum(-1), strict=True)]


REPORTED = ("genre", "score", "part", "artist", "rating")  # free-text tags (titles, headlines) are not groups


def band(kind: str, tag: str, value: Any) -> str:
    """The group a tag value is reported under: scores in bands, everything else as itself."""
    if tag == "score":
        v = float(value)
        return "< 5" if v < 5 else "5-6.9" if v < 7 else "7-7.9" if v < 8 else ">= 8"
    return str(value)


@dataclass(frozen=True)
class PerplexityRow:
    """Perplexity over one group of held-out texts: all (kind "all"), a kind, or a kind's tag value."""

    kind: str
    tag: str
    value: str
    tokens: int
    ppl: float


@dataclass(frozen=True)
class Perplexity:
    """Held-out perplexity, overall and per group (a kind, then each tag value within it)."""

    examples: int
    rows: list[PerplexityRow]

    @property
    def overall(self) -> float:
        """Perplexity over every held-out token."""
        return next(r.ppl for r in self.rows if r.kind == "all")


def perplexity(
    records: list[Record], tokenizer, scorer: Scorer, block_size: int, rendering: str = "tags"
) -> Perplexity:
    """Test perplexity overall and per (kind, tag, value), long examples chunked as in training."""
    eos = tokenizer.eos_token_id
    encoded = encode(tokenizer, records, rendering)
    seqs: list[Sequence] = []
    owner: list[int] = []
    for i, ex in enumerate(encoded):
        for seg in segments(ex, block_size, eos):
            seqs.append(seg)
            owner.append(i)
    totals: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for i, (nll, n) in zip(owner, scorer(seqs), strict=True):
        r = records[i]
        keys = [("all", "", ""), (r.kind, "", "")]
        keys += [(r.kind, tag, band(r.kind, tag, v)) for tag, v in r.tags.items() if tag in REPORTED]
        for key in keys:
            totals[key][0] += nll
            totals[key][1] += n
    rows = [
        PerplexityRow(k, t, v, int(n), math.exp(s / n) if n else NAN) for (k, t, v), (s, n) in totals.items()
    ]
    return Perplexity(len(records), sorted(rows, key=lambda r: (r.kind, r.tag, -r.tokens)))


@dataclass(frozen=True)
class TagIdCase:
    """One real example, and the candidate values of one of its tags to rank by likelihood."""

    record: Record
    tag: str
    candidates: list[Any]


def tag_id_cases(records: list[Record], tag: str, candidates: list[Any], limit: int) -> list[TagIdCase]:
    """Up to ``limit`` records whose true value of ``tag`` is among ``candidates``."""
    known = {str(c) for c in candidates}
    chosen = [r for r in records if str(r.tags.get(tag)) in known]
    return [TagIdCase(r, tag, candidates) for r in chosen[:limit]]


@dataclass(frozen=True)
class TagId:
    """How often the true value of a tag gave a real text the highest likelihood among ``candidates``."""

    n: int  # texts ranked (0: none had a candidate value; the rest is then NaN)
    candidates: int = 0
    accuracy: float = NAN  # ties share the credit, so a model that ignores the tag scores chance
    ci95: tuple[float, float] = (0.0, 1.0)
    chance: float = NAN
    p_value: float = NAN  # binomial, one-sided: above chance
    mean_rank: float = NAN


def tag_id(
    cases: list[TagIdCase], tokenizer, scorer: Scorer, max_tokens: int, rendering: str = "tags"
) -> TagId:
    """How often the true tag value gives the text the highest likelihood, against chance."""
    if not cases:
        return TagId(0)
    seqs: list[Sequence] = []
    for case in cases:
        body = tokenizer(escape_body(case.record.text), add_special_tokens=False)["input_ids"][:max_tokens]
        for value in case.candidates:
            head = tokenizer(
                # Candidates are read as text ("5"); a rendering may need the typed value (5 stars).
                header(
                    case.record.kind,
                    normalize_tags(case.record.kind, case.record.tags | {case.tag: value}),
                    rendering,
                ),
                add_special_tokens=False,
            )["input_ids"]
            seqs.append((head + body, len(head)))
    nlls = iter(scorer(seqs))
    credit, ranks = 0.0, []
    for case in cases:
        losses = [next(nlls)[0] for _ in case.candidates]
        truth = [str(c) for c in case.candidates].index(str(case.record.tags[case.tag]))
        better = sum(loss < losses[truth] for loss in losses)
        ties = sum(loss == losses[truth] for loss in losses) - 1
        ranks.append(1 + better)
        # A tie shares the hit, so a model that ignores the tag scores chance, not 100%.
        credit += 1 / (1 + ties) if better == 0 else 0.0
    n, k = len(cases), len(cases[0].candidates)
    chance = 1 / k
    hits = round(credit)
    return TagId(
        n=n,
        candidates=k,
        accuracy=credit / n,
        ci95=wilson(hits, n),
        chance=chance,
        p_value=float(binomtest(hits, n, chance, alternative="greater").pvalue),
        mean_rank=sum(ranks) / n,
    )
