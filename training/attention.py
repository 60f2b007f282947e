"""Attention over packed blocks without the dense (B, 1, T, T) mask: ``--attention segments``.

A packed block holds whole examples side by side, each attending only to itself, causally. Instead of
one masked attention over every block (T x T scores per head, most of them masked off), each example
runs SDPA's causal path on its own tokens. Examples of similar length are gathered into one batch,
right-padded: under a causal mask a real query never sees the padding after it, so the padding
changes nothing. Each query attends to exactly the keys the block-diagonal mask allows, so the loss
is today's up to float rounding (tests/training/test_same_loss.py). Padding positions of a block
(no example) get a zero output; nothing reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

NAME = "linernotes_segments"
# Segments are grouped by length rounded up to this many tokens: at most T / BUCKET SDPA calls per layer,
# and a segment padded by less than BUCKET tokens.
BUCKET = 64


@dataclass(frozen=True)
class Bucket:
    """Segments of similar length, gathered as rows of one SDPA call."""

    gather: torch.Tensor  # (S, L) long: flat (B*T) token index of each row's tokens, right-padded
    src: torch.Tensor  # (n,) long: real tokens' flat index into the (S*L) outputs
    dst: torch.Tensor  # (n,) long: the same tokens' flat index into (B*T)


@dataclass(frozen=True)
class Segments:
    """Where each example of a micro-batch sits: what ``segment_attention`` needs instead of a mask."""

    buckets: tuple[Bucket, ...]

    def to(self, device: torch.device | str) -> Segments:
        """The same layout on ``device``."""
        return Segments(
            tuple(Bucket(*(t.to(device) for t in (b.gather, b.src, b.dst))) for b in self.buckets)
        )


def layout(spans: list[tuple[int, int]], bucket: int = BUCKET) -> Segments:
    """Buckets for ``spans``: (flat start, length) of every example in a (B*T) micro-batch."""
    groups: dict[int, list[tuple[int, int]]] = {}
    for start, n in spans:
        groups.setdefault(-(-n // bucket), []).append((start, n))
    buckets = []
    for _, group in sorted(groups.items()):
        width = max(n for _, n in group)
        gather = torch.zeros((len(group), width), dtype=torch.long)
        src, dst = [], []
        for row, (start, n) in enumerate(group):
            gather[row, :n] = torch.arange(start, start + n)
            gather[row, n:] = start  # any real token: padding after a causal row is never attended to
            src.append(torch.arange(row * width, row * width + n))
            dst.append(torch.arange(start, start + n))
        buckets.append(Bucket(gather, torch.cat(src), torch.cat(dst)))
    return Segments(tuple(buckets))


def segment_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    segments: Segments | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Transformers' attention interface: query (B, H, T, D), key/value (B, Hkv, T, D) -> (B, T, H, D)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if segments is None:  # not a packed training batch (e.g. a sample's generation): plain SDPA
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    b, h, t, d = query.shape
    # Token-major rows, (B*T, heads, D), so a segment's tokens are one gather away.
    q, k, v = (x.transpose(1, 2).reshape(b * t, x.shape[1], d) for x in (query, key, value))
    pieces, dst = [], []
    for bucket in segments.buckets:
        rows = [x[bucket.gather].transpose(1, 2) for x in (q, k, v)]  # (S, heads, L, D)
        out = F.scaled_dot_product_attention(
            *rows, dropout_p=dropout, is_causal=True, scale=scaling, enable_gqa=k.shape[1] != h
        )  # (S, H, L, D)
        pieces.append(out.transpose(1, 2).reshape(-1, h, d)[bucket.src])  # (n, H, D)
        dst.append(bucket.dst)
    values = torch.cat(pieces)  # SDPA's dtype (bf16 under autocast)
    flat = values.new_zeros((b * t, h, d)).index_put((torch.cat(dst),), values)
    return flat.view(b, t, h, d), None


def register() -> None:
    """Make ``NAME`` an attention implementation transformers' models can use (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, segment_attention)


def body_hidden(
    body: torch.nn.Module, attention_mask: torch.Tensor | None, segments: Segments | None, **inputs: Any
) -> torch.Tensor:
    """``body``'s last hidden states (B, T, H) for a collated micro-batch: through its ``attention_mask``,
    or with ``segments`` through ``segment_attention`` (the training and the frozen-layer forwards)."""
    if segments is None:
        return body(attention_mask=attention_mask, **inputs).last_hidden_state
    with segment_attention_on(body):
        return body(attention_mask=None, segments=segments, **inputs).last_hidden_state


@contextmanager
def segment_attention_on(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``model`` (its config shared by every layer) attends through ``segment_attention``.

    Only for the training and validation forwards: the model's own implementation stays what saving,
    sampling and generation see. The implementation is not in transformers' mask registry, so the model
    builds no mask at all.
    """
    register()
    config = model.config
    before = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = before
