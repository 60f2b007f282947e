"""Batched decoding: many prompts (mixed tags, mixed parameters) in one forward pass per token.

Prompts are left-padded so every row's next token sits in the last column; positions count real
tokens only, so a padded row sees the same positions it would alone. A KV cache makes each step one
token wide. Finished rows are dropped from the batch (and from the cache), so short answers do not
pay for long ones. A row stops at the end marker, at the start of another header (``<|``), or at its
token limit.

Classifier-free guidance: a row with ``guidance != 1`` also decodes its unconditioned prompt in the
same batch, and samples from ``uncond + s * (cond - uncond)`` (both rows then take the same token).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from data.format import HEADER_OPEN
from model.sampling import Sampling, process


@dataclass(frozen=True)
class Prompt:
    """Token ids to continue; ``n_header`` leading ids are the header (not repetition-penalised)."""

    ids: list[int]
    n_header: int
    bare_ids: list[int] | None = None  # unconditioned prompt, used when guidance != 1


@dataclass
class Decoded:
    """What one row produced (excluding the prompt and the end marker) and why it stopped."""

    ids: list[int]
    stop: str  # "end" | "header" | "length"


class _Row:
    """Decoding state of one request."""

    def __init__(self, prompt: Prompt, params: Sampling, vocab: int, device: torch.device) -> None:
        self.params = params
        self.gen = torch.Generator().manual_seed(params.seed if params.seed is not None else 0)
        self.seen = torch.zeros(vocab, dtype=torch.bool)
        self.seen[prompt.ids[prompt.n_header :]] = True
        self.out: list[int] = []
        self.tail = ""
        self.stop: str | None = None


def decode(
    model, prompts: list[Prompt], params: list[Sampling], eos: int, pad: int, token_text: list[str]
) -> list[Decoded]:
    """Decode every prompt with its own sampling parameters; returns one ``Decoded`` per prompt."""
    with torch.inference_mode():
        return _decode(model, prompts, params, eos, pad, token_text)


def _decode(model, prompts, params, eos, pad, token_text) -> list[Decoded]:
    device = next(model.parameters()).device
    vocab = len(token_text)
    rows = [_Row(p, s, vocab, device) for p, s in zip(prompts, params, strict=True)]
    # Batch layout: one column per row, plus one for each guided row's unconditioned prompt.
    seqs = [p.ids for p in prompts]
    pair: dict[int, int] = {}
    for i, (p, s) in enumerate(zip(prompts, params, strict=True)):
        if s.guidance != 1.0 and p.bare_ids is not None:
            pair[i] = len(seqs)
            seqs.append(p.bare_ids)
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for b, seq in enumerate(seqs):
        ids[b, width - len(seq) :] = torch.tensor(seq)
        mask[b, width - len(seq) :] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos.to(device), use_cache=True
    )
    # Only ids the tokenizer knows may be sampled: embedding matrices are often padded past the vocabulary.
    cache, logits = out.past_key_values, out.logits[:, -1, :vocab].float().cpu()  # (batch, V)
    live = list(range(len(rows)))  # row index of each live batch column (guided partners follow)
    # Row i's column, and ("u", i) for its unconditioned partner; rebuilt whenever rows finish.
    batch_of: dict = {i: i for i in live} | {("u", i): col for i, col in pair.items()}
    next_pos = pos[:, -1] + 1  # (batch,)
    for _ in range(max(s.max_new_tokens for s in params)):
        chosen = {i: _step(rows[i], logits, batch_of, i, pair, eos, token_text) for i in live}
        keep_rows = [i for i in live if rows[i].stop is None]
        if not keep_rows:
            break
        columns = [batch_of[i] for i in keep_rows] + [
            batch_of[("u", i)] for i in keep_rows if ("u", i) in batch_of
        ]
        if len(columns) < logits.shape[0]:
            cache.batch_select_indices(torch.tensor(columns, device=device))
            mask, next_pos = mask[columns], next_pos[columns]
        tokens = torch.tensor(
            [chosen[i] for i in keep_rows] + [chosen[i] for i in keep_rows if ("u", i) in batch_of]
        )
        live = keep_rows
        batch_of = {i: n for n, i in enumerate(keep_rows)}
        guided = [i for i in keep_rows if i in pair]
        batch_of |= {("u", i): len(keep_rows) + n for n, i in enumerate(guided)}
        mask = torch.cat([mask, torch.ones((len(columns), 1), dtype=torch.long)], dim=1)
        out = model(
            input_ids=tokens[:, None].to(device),
            attention_mask=mask.to(device),
            position_ids=next_pos[:, None].to(device),
            past_key_values=cache,
            use_cache=True,
        )
        cache, logits = out.past_key_values, out.logits[:, -1, :vocab].float().cpu()
        next_pos = next_pos + 1
    for row in rows:
        row.stop = row.stop or "length"
    return [Decoded(r.out, r.stop or "length") for r in rows]


def _step(
    row: _Row, logits: torch.Tensor, batch_of: dict, i: int, pair: dict, eos: int, token_text: list[str]
) -> int:
    """Sample row ``i``'s next token and update its state; returns the token fed back to the model."""
    cond = logits[batch_of[i]]
    partner = batch_of.get(("u", i)) if i in pair else None
    if partner is not None:
        uncond = logits[partner]
        cond = uncond + row.params.guidance * (cond - uncond)
    probs = process(cond, row.seen.nonzero().flatten(), row.params)
    token = int(torch.multinomial(probs, 1, generator=row.gen))
    if token == eos:
        row.stop = "end"
        return token
    row.out.append(token)
    row.seen[token] = True
    row.tail = (row.tail + token_text[token])[-16:]
    if HEADER_OPEN in row.tail:
        row.stop = "header"
    elif len(row.out) >= row.params.max_new_tokens:
        row.stop = "length"
    return token
