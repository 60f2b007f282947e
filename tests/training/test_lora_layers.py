"""``--lora-layers N``: LoRA on the top N layers only, so the backward pass stops below them."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from linernotes.common.errors import ConfigError
from linernotes.training.config import TrainConfig
from linernotes.training.setup import add_lora


def tiny_llama(layers: int = 3) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return LlamaForCausalLM(config)


def test_only_the_top_layers_get_adapters_and_gradients():
    model = add_lora(tiny_llama(), TrainConfig(data="d", out="o", lora=True, lora_r=4, lora_layers=1))
    adapted = {n.split(".layers.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted == {"2"}
    model(torch.randint(0, 64, (1, 8))).logits.sum().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


def test_more_layers_than_the_model_has_is_refused():
    with pytest.raises(ConfigError, match="has 3 layers"):
        add_lora(tiny_llama(), TrainConfig(data="d", out="o", lora=True, lora_layers=4))
