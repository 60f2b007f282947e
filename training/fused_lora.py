"""LoRA's training forward in fewer passes over memory: ``--lora-forward fused``.

peft computes ``base(x) + B(A(dropout(x))) * scaling``: dropout scales its mask over the whole input, the
scaling multiplies the whole output, and the sum is one more pass; on a CPU those passes (and their
backward) cost about as much as LoRA's own small matmuls. The fused forward draws the same dropout mask
from the same generator (an unscaled ``bernoulli_``, as ``F.dropout`` does on a CPU), folds dropout's
1 / (1 - p) and LoRA's scaling into the rank-r activations (N x r instead of N x in and N x out), and adds
``h @ B^T`` into the base layer's output inside the GEMM (``addmm_``). Same function, same random
numbers: the loss and gradients equal peft's up to float rounding (tests/training/test_same_loss.py).
Only the forward changes: parameters, saving and merging stay peft's.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def fused_forward(layer: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """A peft ``lora.Linear`` forward: x (..., in) -> (..., out); peft's own unless plain single LoRA."""
    adapters = layer.active_adapters
    name = adapters[0] if len(adapters) == 1 else None
    if (
        args
        or kwargs  # adapter_names (mixed batches) and variants' arguments: peft's path
        or name is None
        or layer.merged
        or layer.disable_adapters
        or name not in layer.lora_A
        or name in layer.lora_variant
    ):
        return type(layer).forward(layer, x, *args, **kwargs)
    a, b = layer.lora_A[name].weight, layer.lora_B[name].weight  # (r, in), (out, r)
    drop, scale = layer.lora_dropout[name], layer.scaling[name]
    flat = x.reshape(-1, x.shape[-1])  # (N, in)
    out = layer.base_layer(flat)  # (N, out); its backward keeps its input, never its output
    lora_in = flat.to(a.dtype)
    if isinstance(drop, nn.Dropout) and drop.training and drop.p > 0:
        # F.dropout on a CPU: empty_like(x).bernoulli_(1 - p), then div_ and mul; the same draw, unscaled.
        lora_in = lora_in * torch.empty_like(lora_in).bernoulli_(1 - drop.p)
        scale = scale / (1 - drop.p)
    h = F.linear(lora_in, a) * scale  # (N, r)
    out = out.addmm_(h.to(out.dtype), b.t().to(out.dtype))
    return out.view(*x.shape[:-1], out.shape[-1])


def fuse(model: nn.Module) -> int:
    """Give each of ``model``'s peft LoRA linear layers the fused forward; returns how many."""
    from peft.tuners.lora.layer import Linear

    layers = [m for m in model.modules() if type(m) is Linear]
    for layer in layers:
        layer.forward = MethodType(fused_forward, layer)
    return len(layers)
