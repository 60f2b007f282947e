"""LoRA's training forward in fewer passes over memory: ``--lora-forward fused``.

peft computes ``base(x) + B(A(dropout(x))) * scaling``: dropout scales its mask over the whole input, the
scaling multiplies the whole output, and the sum is one more pass; on a CPU those passes (and their
backward) cost about as much as LoRA's own small matmuls. The fused forward draws the same dropout mask
from the same generator (an unscaled ``bernoulli_``, as ``F.dropout`` does on a CPU), folds dropout's
1 / (1 - p) and LoRA's scaling into the rank-r activations (N x r instead of N x in and N x out), and adds
``h @ B^T`` into the base layer's output inside the GEMM (``addmm_``). Same function, same random
numbers: the loss and gradients equal peft's up to float rounding (tests/training/test_same_loss.py).
Only the forward changes: parameters, saving and merging stay peft's.

``--dropout-draws bits`` (the server recipe) draws the masks another way (``keep_mask``): torch's CPU
Bernoulli takes one random number at a time unless the CPU is Intel's (its MKL path), 4.1 ms for one
1,024 x 576 mask on a 2-core AMD EPYC, 15% of a server step; four 15-bit slices of each 64-bit random
word take 1.9 ms, and the mask multiplies as a bool. The same rate (to 1 / 32768) from the same generator,
other random numbers: a different run, not a faster same one.
"""

from __future__ import annotations

import math
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
        if getattr(layer, "dropout_draws", "torch") == "bits":
            keep, kept = keep_mask(lora_in.shape, drop.p, lora_in.device)
            lora_in, scale = lora_in * keep, scale / kept
        else:
            # F.dropout on a CPU: empty_like(x).bernoulli_(1 - p), then div_ and mul; the same draw, unscaled.
            lora_in = lora_in * torch.empty_like(lora_in).bernoulli_(1 - drop.p)
            scale = scale / (1 - drop.p)
    h = F.linear(lora_in, a) * scale  # (N, r)
    out = out.addmm_(h.to(out.dtype), b.t().to(out.dtype))
    return out.view(*x.shape[:-1], out.shape[-1])


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """(bool mask of ``shape``: True where dropout at rate ``p`` keeps, the share it keeps), from four 15-bit
    draws per 64-bit word of the default generator; the rate is ``p`` rounded to a multiple of 1 / 32768."""
    n = math.prod(shape)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()  # (n/4,) in [0, 2^63)
    draws = words.view(torch.int16)[:n].view(shape) & 0x7FFF  # (shape) uniform in [0, 32768)
    dropped = min(round(p * 32768), 32767)  # (p near 1 still keeps one value in 32768: no 1 / 0 scale)
    return draws >= dropped, (32768 - dropped) / 32768


def fuse(model: nn.Module, dropout_draws: str = "torch") -> int:
    """Give each of ``model``'s peft LoRA linear layers the fused forward (its dropout masks drawn as
    ``dropout_draws`` says); returns how many."""
    from peft.tuners.lora.layer import Linear

    layers = [m for m in model.modules() if type(m) is Linear]
    for layer in layers:
        layer.forward = MethodType(fused_forward, layer)
        layer.dropout_draws = dropout_draws
    return len(layers)
