"""Per-request sampling parameters and the logits processing they imply (a batch of rows at once)."""

from __future__ import annotations

import torch

from linernotes.model.config import Sampling


def sample(
    logits: torch.Tensor, seen: torch.Tensor, params: list[Sampling], gens: list[torch.Generator]
) -> list[int]:
    """One token per row from logits (R, V), each row under its own ``Sampling`` and generator.

    Vectorised across rows (one penalty pass, one top-k, one softmax for the whole batch); only the
    draw itself is per row, so each row's seed alone decides its text. ``seen`` (R, V) bool marks the
    ids already in each row's context, penalised CTRL-style (divide positive logits, multiply negative
    ones) so loops are discouraged. Rows with top-k off (0) keep the whole vocabulary.
    """
    vocab = logits.shape[1]
    logits = logits.float()
    penalty = torch.tensor([s.repetition_penalty for s in params])[:, None]  # (R, 1)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    logits = torch.where(seen, penalised, logits)
    temperature = torch.tensor([s.temperature or 1.0 for s in params])[:, None]  # greedy rows: argmax below
    ks = torch.tensor([s.top_k if 0 < s.top_k < vocab else vocab for s in params])
    # (R, K), sorted best first: past top-k, nothing can be sampled, so the rest of the vocabulary is
    # never sorted (a full sort per row was the decode step's largest cost after the forward pass).
    values, ids = torch.topk(logits / temperature, int(ks.max()), dim=-1)
    values = values.masked_fill(torch.arange(values.shape[1])[None, :] >= ks[:, None], float("-inf"))
    probs = torch.softmax(values, dim=-1)
    top_p = torch.tensor([s.top_p for s in params])[:, None]
    # Keep the smallest prefix whose mass reaches top_p (always the first token; top_p 1 keeps all).
    drop = ((probs.cumsum(-1) - probs) >= top_p) & (top_p < 1.0)
    probs = torch.softmax(values.masked_fill(drop, float("-inf")), dim=-1)
    picks = []
    for r, (s, gen) in enumerate(zip(params, gens, strict=True)):
        at = 0 if s.temperature == 0 else int(torch.multinomial(probs[r], 1, generator=gen))
        picks.append(int(ids[r, at]))
    return picks


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance on logits (..., V): ``uncond + scale * (cond - uncond)``.

    Scale 1 gives ``cond``, 0 gives ``uncond``, above 1 moves further the way the tags point. Softmax
    ignores a constant shift per row, so mixing raw logits equals mixing log-probabilities. A tensor
    ``scale`` broadcasts, e.g. (rows, 1) for one scale per row.
    """
    return uncond + scale * (cond - uncond)
