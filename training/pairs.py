"""The pairwise header loss (``--pair-weight``): a body likelier under its own header than a contrasting one.

Generation pushes each sample away from its contrasting header (data/format.py ``contrast_tags``: a score
mirrored, a review's genre or a song's part swapped; model/generator.py), and it can push only as far as the
model tells the two headers apart; likelihood tag-ID (a lyric's part and artist) ranks exactly that. This
term trains it. Each optimizer step draws ``pair_batch`` training examples that have a contrast; the first
``pair_tokens`` tokens of each body are scored under the example's own header and under a contrasting one
(the same function generation uses, the swapped value drawn at random), and the loss is
-log sigmoid(log p(body | own) - log p(body | contrast)), averaged over the pairs: DPO's logistic form,
where the pair shares its body, so no reference model is needed. A pair the model already tells apart by a
few nats adds almost nothing; a middle score or a near genre is where it pulls. The term is added to the LM
loss at ``pair_weight``; at 0 nothing is drawn and training is what it was (tests/training/test_pairs.py).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from linernotes.data.format import SWAPPED, Record, contrast_tags, header
from linernotes.training.packing import IGNORE, Encoded, Segment, collate, pack_order

log = logging.getLogger(__name__)

Drawn = tuple[list[int], list[int], list[int]]  # (own header ids, contrasting header ids, body ids)


# Lyrics, which generation contrasts by their part alone, are paired as likelihood tag-ID ranks them
# (training/eval/likelihood.py): one of these tags swapped for another value the split knows, the pick
# choosing which, so the artist is trained as well.
ONE_SWAPPED = {"lyrics": ("part", "artist")}


def contrast_for(kind: str, tags: Mapping[str, Any], known: Mapping[str, Any], pick: int) -> dict | None:
    """The contrasting tags of a training example, from what the training split knows (as the card will):
    generation's own contrast where it has one, else one tag of ``ONE_SWAPPED`` swapped; None if neither."""
    entry = known.get(kind, {})
    span = entry.get("score_range", (0.0, 10.0))
    if kind not in ONE_SWAPPED:
        swap = SWAPPED.get(kind)
        return contrast_tags(kind, tags, span, sorted(entry.get(swap, {})) if swap else (), pick)
    names = [n for n in ONE_SWAPPED[kind] if n in tags and set(entry.get(n, {})) - {str(tags[n])}]
    if not names:
        return None
    name = names[pick % len(names)]
    return contrast_tags(kind, tags, span, sorted(entry[name]), pick // len(names), swap=name)


class Pairs:
    """The examples a pair can be drawn from, and each step's draw (a pure function of seed and step)."""

    def __init__(
        self,
        tokenizer: Any,
        records: Sequence[Record],
        encoded: Sequence[Encoded],
        known: Mapping[str, Any],
        rendering: str,
        tokens: int,
        seed: int,
    ) -> None:
        self.tokenizer, self.known, self.rendering, self.seed = tokenizer, known, rendering, seed
        self.items = [
            (r, ex.header, ex.body[:tokens])
            for r, ex in zip(records, encoded, strict=True)
            if ex.body and contrast_for(r.kind, r.tags, known, 0) is not None
        ]
        self._ids: dict[str, list[int]] = {}
        log.info(
            "pair loss: %d of %d training examples have a contrasting header", len(self.items), len(records)
        )

    def _header_ids(self, kind: str, tags: Mapping[str, Any]) -> list[int]:
        text = header(kind, tags, self.rendering)
        if text not in self._ids:
            self._ids[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._ids[text]

    def draw(self, step: int, n: int, process: int = 0) -> list[Drawn]:
        """``n`` pairs for optimizer step ``step`` on process ``process``: the same ones on a resume."""
        rng = random.Random((self.seed * 1_000_003 + step) * 64 + process)
        out = []
        for _ in range(n):
            record, own, body = self.items[rng.randrange(len(self.items))]
            other = contrast_for(record.kind, record.tags, self.known, rng.randrange(1 << 30))
            assert other is not None  # items were kept for having one, and a pick never removes it
            out.append((own, self._header_ids(record.kind, other), body))
        return out


def collate_pairs(drawn: list[Drawn], pad: int, attention: str) -> tuple[dict[str, Any], torch.Tensor]:
    """A micro-batch of both sides of every pair, and (B, T) long: at each target position, the side it
    belongs to (pair i's own side is 2i, its contrasting side 2i + 1), -1 elsewhere.

    Its rows are as long as the longest side, not the training block: sides are near one length (a
    header and ``pair_tokens``), so a row holds one or two and little is padding."""
    segs: list[Segment] = [(head + body, len(head)) for own, other, body in drawn for head in (own, other)]
    block_size = max(len(tokens) for tokens, _ in segs)
    order = pack_order([len(tokens) for tokens, _ in segs], block_size)
    batch = collate([[segs[i] for i in block] for block in order], block_size, pad, attention)
    # collate lays each row's sides left to right, so its targets, read row by row, are each side's body
    # in packing order: every side's index repeated once per body token.
    placed = [i for block in order for i in block]
    sides = torch.tensor(placed).repeat_interleave(
        torch.tensor([len(segs[i][0]) - segs[i][1] for i in placed])
    )
    owners = torch.full_like(batch["targets"], -1)
    owners[batch["targets"] != IGNORE] = sides
    return batch, owners


def pair_loss(losses: torch.Tensor, owners: torch.Tensor, pairs: int) -> tuple[torch.Tensor, float]:
    """(mean logistic loss, share of pairs whose own header is the likelier) from each target's loss (N,)
    and its side (N,), both in the order the LM loss returns them."""
    logp = losses.new_zeros(2 * pairs).index_add(0, owners, -losses)  # (2P,) summed body log-probs
    margin = logp[0::2] - logp[1::2]  # (P,) own minus contrasting
    return -F.logsigmoid(margin).mean(), float((margin > 0).float().mean())
