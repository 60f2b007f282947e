"""``--cache-frozen``: the layers below the LoRA computed once per segment, the loss and gradients unchanged."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel

from linernotes.common.errors import ConfigError
from linernotes.training.frozen import FrozenLayers, supported
from linernotes.training.loop import LMLoss, Trainer
from linernotes.training.packing import collate
from tests.conftest import tiny_config
from tests.training.test_lora_layers import tiny_llama

# Two micro-batches holding the same segments packed differently (other neighbours, other places).
FIRST = [[(30, 0), (50, 1), (10, 2)], [(96, 3)], [(5, 4), (40, 5)]]
REPACKED = [[(96, 3)], [(40, 5), (10, 2), (30, 0)], [(50, 1), (5, 4)]]


def segments_of(layout: list, vocab: int) -> list:
    """Blocks of random segments (two header tokens each); a segment's tokens depend on its id only."""

    def tokens(n: int, seed: int) -> list[int]:
        return torch.randint(3, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()

    return [[(tokens(n, seed), 2) for n, seed in row] for row in layout]


def llama_with_top_lora() -> torch.nn.Module:
    """The 4-layer tiny GQA Llama of test_lora_layers with LoRA (non-zero B) on its top 2 layers only."""
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], layers_to_transform=[2, 3]
    )
    model = get_peft_model(tiny_llama(layers=4), lora)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


def loss_and_grads(model, blocks: list, attention: str, frozen: FrozenLayers | None = None) -> tuple:
    """Summed loss and every LoRA gradient of one micro-batch, with or without the cache."""
    model.zero_grad(set_to_none=True)
    loss = LMLoss(model).train()
    batch = collate(blocks, 96, 0, attention)
    if frozen is not None:
        loss.first_trained = frozen.first
        batch["frozen"] = frozen.hidden(blocks, batch)
    total, _ = loss(**batch)
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["mask", "segments"])
def test_cached_lower_layers_give_the_same_loss_and_gradients(attention):
    model = llama_with_top_lora()
    frozen = FrozenLayers(LMLoss(model).body, first=2)
    for layout in (FIRST, REPACKED):  # the second finds every segment cached, beside other neighbours
        blocks = segments_of(layout, 64)
        plain = loss_and_grads(model, blocks, attention)
        cached = loss_and_grads(model, blocks, attention, frozen)
        assert torch.allclose(cached[0], plain[0], rtol=1e-5)
        assert cached[1].keys() == plain[1].keys() and len(plain[1]) == 12  # 3 projections x 2 layers x A, B
        for name, grad in plain[1].items():
            assert (cached[1][name] - grad).abs().max() <= 1e-5 * grad.abs().max(), name
    assert (frozen.computed, frozen.reused) == (6, 6)


def test_the_store_holds_each_segments_own_hidden_states():
    model = llama_with_top_lora()
    body = LMLoss(model).body
    frozen = FrozenLayers(body, first=2)
    blocks = segments_of(FIRST, 64)
    frozen.hidden(blocks, collate(blocks, 96, 0, "segments"))
    tokens, _ = blocks[2][1]  # 40 tokens, packed after a 5-token segment
    with torch.no_grad():
        alone = body(input_ids=torch.tensor([tokens]), output_hidden_states=True).hidden_states[2][0]
    assert torch.allclose(frozen.store[tuple(tokens)], alone, atol=1e-5)


def test_only_llama_style_models_without_dropout_are_supported():
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=64))
    assert supported(LMLoss(llama_with_top_lora()).body)
    assert not supported(LMLoss(gpt2).body)


def test_cache_frozen_needs_lora_layers(sample_data, tmp_path):
    with pytest.raises(ConfigError, match="--cache-frozen needs --lora-layers"):
        tiny_config(sample_data, tmp_path, lora=True, cache_frozen=True)


def losses(run) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r] + [r["val_loss"] for r in rows if "val_loss" in r]


def test_a_run_of_several_passes_is_the_same_cached(tiny_llama_base, sample_data, tmp_path):
    """The tiny Llama's top layer trained over the first examples for 3 passes (tag dropout, validation)."""
    settings = {
        "from_scratch": None,
        "base": str(tiny_llama_base),
        "lora": True,
        "lora_r": 4,
        "lora_layers": 1,
    }
    settings.update(steps=6, eval_every=3, tag_dropout=0.15, max_examples=24, attention="segments")
    plain = Trainer(tiny_config(sample_data, tmp_path / "plain", **settings))
    plain.train()  # before the next Trainer seeds torch again: both runs draw the same LoRA dropout masks
    cached = Trainer(tiny_config(sample_data, tmp_path / "cached", cache_frozen=True, **settings))
    cached.train()
    assert plain.frozen is None and cached.frozen is not None and cached.loss.first_trained == 1
    assert losses(tmp_path / "cached") == pytest.approx(losses(tmp_path / "plain"), rel=1e-4)
    assert len(losses(tmp_path / "plain")) == 9  # 6 steps; validation before, after 3 and after 6
    assert cached.frozen.reused > cached.frozen.computed > 0  # later passes and validations reuse
    run = json.loads((tmp_path / "cached" / "run.json").read_text())
    assert run["frozen_cache"] == {"computed": cached.frozen.computed, "reused": cached.frozen.reused}
    assert "frozen_cache" not in json.loads((tmp_path / "plain" / "run.json").read_text())


def test_a_gpt2_base_trains_uncached_and_says_so(sample_data, tmp_path, caplog):
    config = tiny_config(sample_data, tmp_path / "run", lora=True, lora_layers=1, cache_frozen=True, steps=1)
    with caplog.at_level(logging.INFO):
        trainer = Trainer(config)
    assert trainer.frozen is None and "training uncached" in caplog.text
