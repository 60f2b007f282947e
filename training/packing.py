"""Token blocks that waste nothing: examples packed whole, long ones chunked with their header repeated.

Every example is ``header tokens + body tokens + end-of-text``, tokenized in two parts exactly as
generation sees them (the prompt is the header alone). Examples are packed into fixed-size blocks
(best fit), each keeping its own positions (0..n-1) and attending only to itself through a
block-diagonal causal mask, so packing changes nothing a model sees. Loss is computed only on body
and end tokens: never on headers or padding. An example longer than a block is split into chunks
that each start with the header again, so conditioning holds on every chunk; only the last chunk
ends with end-of-text. Nothing is truncated.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Any

import torch

from linernotes.common.errors import ConfigError
from linernotes.data.format import Record, escape_body, header

IGNORE = -100


@dataclass(frozen=True)
class Encoded:
    """One example's token ids: conditioned header, unconditioned header, body (end marker excluded)."""

    header: list[int]
    bare_header: list[int]
    body: list[int]


def encode(tokenizer, records: list[Record], rendering: str = "tags") -> list[Encoded]:
    """Tokenize records, headers in ``rendering``; headers are cached since many records share them."""
    cache: dict[str, list[int]] = {}

    def ids(text: str) -> list[int]:
        if text not in cache:
            cache[text] = tokenizer(text, add_special_tokens=False)["input_ids"]
        return cache[text]

    if not records:  # a split can be empty (a tiny corpus); tokenizers reject an empty batch
        return []
    bodies = tokenizer([escape_body(r.text) for r in records], add_special_tokens=False)["input_ids"]
    return [
        Encoded(ids(header(r.kind, r.tags, rendering)), ids(header(r.kind, {}, rendering)), list(body))
        for r, body in zip(records, bodies, strict=True)
    ]


Segment = tuple[list[int], int]  # (token ids, number of leading header tokens without loss)


def segments(example: Encoded, block_size: int, eos: int, unconditioned: bool = False) -> list[Segment]:
    """The example as one or more segments that fit a block, each starting with the header."""
    head = example.bare_header if unconditioned else example.header
    room = block_size - len(head) - 1
    if room < 16:
        raise ConfigError(f"a header of {len(head)} tokens leaves no room in --block-size {block_size}")
    body = example.body
    pieces = [body[i : i + room] for i in range(0, max(len(body), 1), room)]
    out = [(head + piece, len(head)) for piece in pieces]
    last_ids, n_head = out[-1]
    out[-1] = (last_ids + [eos], n_head)
    return out


def pack(segs: list[Segment], block_size: int) -> list[list[Segment]]:
    """Best-fit-decreasing bin packing of segments into blocks of ``block_size`` tokens."""
    return [[segs[i] for i in block] for block in pack_order([len(s[0]) for s in segs], block_size)]


def pack_order(lengths: list[int], block_size: int) -> list[list[int]]:
    """``pack``'s blocks as indices into ``lengths`` (for callers that must find their segments again)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    blocks: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (room left, block index)
    for i in order:
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            room, b = free.pop(at)
        else:
            room, b = block_size, len(blocks)
            blocks.append([])
        blocks[b].append(i)
        if room - n > 0:
            bisect.insort(free, (room - n, b))
    return blocks


def epoch_blocks(
    examples: list[Encoded], block_size: int, eos: int, seed: int, epoch: int, tag_dropout: float = 0.0
) -> list[list[Segment]]:
    """This epoch's blocks in training order (tag dropout and order both fixed by seed and epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    segs = [s for ex in examples for s in segments(ex, block_size, eos, rng.random() < tag_dropout)]
    blocks = pack(segs, block_size)
    rng.shuffle(blocks)
    return blocks


def collate(
    blocks: list[list[Segment]], block_size: int, pad: int, attention: str = "mask"
) -> dict[str, Any]:
    """Tensors for a micro-batch of blocks.

    input_ids, targets, position_ids: (B, T); ``targets[b, t]`` is the token position t must predict
    (the next one), or IGNORE. Then, by ``attention``: ``mask``: attention_mask (B, 1, T, T) bool,
    True = may attend; ``segments``: attention_mask None and ``segments``, where each example sits
    (training/attention.py).
    """
    b_size, t = len(blocks), block_size
    ids = torch.full((b_size, t), pad, dtype=torch.long)
    targets = torch.full((b_size, t), IGNORE, dtype=torch.long)
    pos = torch.zeros((b_size, t), dtype=torch.long)
    seg = torch.full((b_size, t), -1, dtype=torch.long)
    spans: list[tuple[int, int]] = []  # (flat start in B*T, length) of every example
    for b, block in enumerate(blocks):
        at = 0
        for s, (tokens, n_head) in enumerate(block):
            n = len(tokens)
            ids[b, at : at + n] = torch.tensor(tokens)
            pos[b, at : at + n] = torch.arange(n)
            seg[b, at : at + n] = s
            # Position p predicts token p+1; the header's last position predicts the first body token.
            targets[b, at + n_head - 1 : at + n - 1] = torch.tensor(tokens[n_head:])
            spans.append((b * t + at, n))
            at += n
    batch: dict[str, Any] = {"input_ids": ids, "targets": targets, "position_ids": pos}
    if attention == "segments":
        from linernotes.training.attention import layout

        return {**batch, "attention_mask": None, "segments": layout(spans)}
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    same = seg[:, :, None] == seg[:, None, :]
    # Padding attends to itself only, so no row of the mask is empty (an empty row gives NaN in sdpa).
    mask = (same & causal) | torch.eye(t, dtype=torch.bool)
    return {**batch, "attention_mask": mask[:, None]}


def useful_tokens(blocks: list[list[Segment]]) -> int:
    """Non-padding tokens in these blocks."""
    return sum(len(tokens) for block in blocks for tokens, _ in block)
