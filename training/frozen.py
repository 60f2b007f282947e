"""The frozen lower layers computed once per example: ``--cache-frozen`` (with ``--lora-layers``).

With LoRA on the top K layers only, nothing below them trains: the embeddings and the lower layers
are the base's. An example attends only to itself, from position 0, whatever block it is packed into,
so its hidden states at the first LoRA layer are the same on every pass. A server's upload is trained
for several passes (3-8), each recomputing them. ``FrozenLayers`` keeps each distinct segment's
hidden states (its tokens are the key: an example with its tags and bare are two segments) the first
time a micro-batch holds it, computed by the lower layers under no_grad on the new segments alone;
every training or validation forward then starts at the first LoRA layer. The loss is the uncached
one up to float rounding (tests/training/test_frozen.py): a segment's neighbours differ, and only the
order of sums in a matmul can tell.

Llama-style models only (token embeddings, then the layers: SmolLM2, the offline base): GPT-2 adds
position embeddings after its token embeddings and has dropout in its frozen layers, so it trains
uncached (``supported``). A cached token costs hidden_size numbers (2.3 kB in fp32 on the 135M base),
kept where the forward ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from linernotes.training.attention import body_hidden
from linernotes.training.packing import Segment, collate, pack


def supported(body: nn.Module) -> bool:
    """Whether ``body`` (a base model's decoder) can start from cached hidden states: Llama-style, no dropout."""
    config = body.config
    llama_like = all(hasattr(body, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb"))
    return (
        llama_like
        and not getattr(config, "attention_dropout", 0.0)
        and not getattr(config, "hidden_dropout", 0.0)
    )


@contextmanager
def only_layers(body: nn.Module, start: int, stop: int | None, norm: bool = True) -> Iterator[None]:
    """Within the block ``body`` runs its layers[start:stop] alone (``norm`` False: and skips the final norm)."""
    layers, final = body.layers, body.norm
    body.layers = nn.ModuleList(layers[start:stop])
    if not norm:
        body.norm = nn.Identity()
    try:
        yield
    finally:
        body.layers, body.norm = layers, final


class FrozenLayers:
    """Hidden states at layer ``first`` (the first with LoRA) of every segment seen, computed once."""

    def __init__(self, body: nn.Module, first: int) -> None:
        self.body, self.first = body, first
        self.store: dict[tuple[int, ...], torch.Tensor] = {}  # segment tokens -> (n, H) float
        self.computed = self.reused = 0  # segments computed by the lower layers / found in the store

    def hidden(self, blocks: list[list[Segment]], batch: dict[str, Any]) -> torch.Tensor:
        """(B, T, H): the input to layer ``first`` for the collated ``batch`` of ``blocks``; padding zero."""
        keys = _keys(blocks)
        missing = {key: None for row in keys for key in row if key not in self.store}
        self.reused += sum(len(row) for row in keys) - len(missing)
        if missing:
            self._compute(list(missing), batch)
        some = self.store[keys[0][0]]
        out = some.new_zeros((len(blocks), batch["input_ids"].shape[1], some.shape[-1]))
        for b, at, key in _placed(keys):
            out[b, at : at + len(key)] = self.store[key]
        return out

    def _compute(self, missing: list[tuple[int, ...]], like: dict[str, Any]) -> None:
        """Run the lower layers on the ``missing`` segments alone, packed as ``like`` (a collated micro-batch:
        its block size, attention layout and device) packs them, and store each one's hidden states.

        Only the new ones: with tag dropout each pass draws some segments bare for the first time, and a
        micro-batch holds 20-30 of the upload's short sections, so nearly every one has a new segment."""
        t = like["input_ids"].shape[1]
        blocks = pack([(list(key), 1) for key in missing], t)  # (header length: only targets use it)
        attention = "mask" if like.get("segments") is None else "segments"
        device = like["input_ids"].device
        # Padding: any id (nothing real attends to it). As the trainer moves a micro-batch to its device.
        batch = {k: v if v is None else v.to(device) for k, v in collate(blocks, t, 0, attention).items()}
        inputs = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"], "use_cache": False}
        with torch.no_grad(), only_layers(self.body, 0, self.first, norm=False):
            hidden = body_hidden(self.body, batch["attention_mask"], batch.get("segments"), **inputs)
        hidden = hidden.detach()  # (B', T, H), where and as the forward computed it
        for b, at, key in _placed(_keys(blocks)):
            self.store[key] = hidden[b, at : at + len(key)].clone()
        self.computed += len(missing)


def _keys(blocks: list[list[Segment]]) -> list[list[tuple[int, ...]]]:
    """Each block's segments as store keys (their tokens)."""
    return [[tuple(tokens) for tokens, _ in block] for block in blocks]


def _placed(rows: list[list[tuple[int, ...]]]) -> Iterator[tuple[int, int, tuple[int, ...]]]:
    """(block, start position, key) of every segment, packed one after another from position 0."""
    for b, row in enumerate(rows):
        at = 0
        for key in row:
            yield b, at, key
            at += len(key)
