"""Judge-free fluency: how likely an untouched pretrained model finds a set of texts.

The texts are scored as plain text (no tag header, which the untouched model never saw), each after
the model's end-of-text token, so every token of the text is predicted. The figure is the
token-weighted perplexity, exp(total NLL / total tokens); it means most beside the same figure for
real text of the same kind (lower is more fluent to that model, though very repetitive text can
score low too, which the diversity figures catch).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from linernotes.training.eval.likelihood import Sequence, nll_scorer


def load_scorer(model_dir: str | Path) -> tuple[Any, Any]:
    """The model (fp32, eval mode) and tokenizer of ``model_dir`` or a base name (resolved offline)."""
    from linernotes.training.setup import load_base

    model, tokenizer = load_base(str(model_dir))
    return model.to(torch.float32).eval(), tokenizer


def sequences(tokenizer: Any, texts: list[str], max_tokens: int) -> list[Sequence]:
    """Each non-empty text's first ``max_tokens`` tokens after an end-of-text token (the one unscored prefix)."""
    start = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    out: list[Sequence] = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
        if ids:
            out.append(([start, *ids], 1))
    return out


def perplexity_of(model: Any, tokenizer: Any, texts: list[str], batch_size: int, max_tokens: int) -> float:
    """Token-weighted perplexity of ``texts`` under an already loaded model (NaN when nothing is scored)."""
    scored = nll_scorer(model, batch_size)(sequences(tokenizer, texts, max_tokens))
    nll, tokens = sum(n for n, _ in scored), sum(k for _, k in scored)
    return math.exp(nll / tokens) if tokens else math.nan
