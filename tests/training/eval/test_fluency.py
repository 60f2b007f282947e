"""Judge-free fluency on the tiny Llama base: the arithmetic, and that it tells text from garbage."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

from linernotes.data.splits import read_split
from linernotes.training.eval.fluency import load_scorer, perplexity_of, sequences

GARBAGE = " ".join(["zq xjv qkz vvx jq", "kkq zzv xq qjx"] * 12)


def perplexity_under(model_dir, texts, batch_size=8, max_tokens=256):
    """Perplexity of ``texts`` under the model in ``model_dir``, loaded as the eval loads its scorer."""
    model, tokenizer = load_scorer(model_dir)
    return perplexity_of(model, tokenizer, texts, batch_size, max_tokens)


def _texts(prepared: Path, split: str) -> list[str]:
    return [i.record.text for i in read_split(prepared, split)]


def _by_hand(model_dir: Path, texts: list[str], max_tokens: int) -> float:
    """The same figure one text at a time with the model's own loss (no batching, no padding)."""
    model, tok = load_scorer(model_dir)
    nll, n = 0.0, 0
    for text in texts:
        ids = [tok.eos_token_id, *tok(text, add_special_tokens=False)["input_ids"][:max_tokens]]
        x = torch.tensor([ids])
        with torch.inference_mode():
            loss = model(input_ids=x, labels=x).loss  # mean over the len(ids) - 1 predicted tokens
        nll, n = nll + float(loss) * (len(ids) - 1), n + len(ids) - 1
    return math.exp(nll / n)


def test_token_weighted_perplexity_matches_one_text_at_a_time(tiny_llama_base, sample_data):
    texts = _texts(sample_data, "test")[:5] + ["a", ""]  # uneven lengths share padded batches
    got = perplexity_under(tiny_llama_base, texts, batch_size=3, max_tokens=40)
    assert got == pytest.approx(_by_hand(tiny_llama_base, [t for t in texts if t], 40), rel=1e-4)
    assert math.isnan(perplexity_under(tiny_llama_base, ["", ""], batch_size=2))


def test_every_token_of_a_text_is_scored_after_end_of_text(tiny_llama_base):
    _, tok = load_scorer(tiny_llama_base)
    ((ids, prefix),) = sequences(tok, ["hello there"], max_tokens=100)
    assert ids[0] == tok.eos_token_id and prefix == 1
    assert ids[1:] == tok("hello there", add_special_tokens=False)["input_ids"]
    assert len(sequences(tok, [GARBAGE], max_tokens=7)[0][0]) == 8


@pytest.fixture(scope="module")
def fluent_llama(tiny_llama_base: Path, sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama base after 80 plain-text steps on the sample's training split (a second or two)."""
    model, tok = load_scorer(tiny_llama_base)
    stream: list[int] = []
    for text in _texts(sample_data, "train"):
        stream += [tok.eos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
    rng, width = random.Random(0), 64
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide model: threads only contend (50x slower on a busy 2-core box)
    try:
        model.train()
        for _ in range(80):
            starts = [rng.randrange(len(stream) - width) for _ in range(8)]
            x = torch.tensor([stream[s : s + width] for s in starts])
            model(input_ids=x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("fluent") / "llama"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_repetitive_garbage_scores_worse_than_real_text(fluent_llama, sample_data):
    real = perplexity_under(fluent_llama, _texts(sample_data, "test")[:40], batch_size=8)
    garbage = perplexity_under(fluent_llama, [GARBAGE] * 4, batch_size=8)
    assert real * 3 < garbage, (real, garbage)  # measured: about 135 against 675
