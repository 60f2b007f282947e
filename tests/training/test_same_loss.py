"""``--attention segments`` and ``--lora-forward fused`` compute today's loss and gradients on the same
batches (fp32: equal to 1e-5 relative; the dropout masks are the same draws), alone and in the loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from linernotes.training.attention import layout
from linernotes.training.fused_lora import fuse
from linernotes.training.loop import LMLoss, train
from linernotes.training.packing import collate
from tests.conftest import tiny_config

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# Segments of many lengths (bucketed apart and together), blocks with padding and one full block.
LENGTHS = ([30, 50, 10], [96], [5, 40], [20, 20, 20, 3])


def blocks(vocab: int) -> list:
    """Packed blocks of random tokens, header of two tokens each."""
    g = torch.Generator().manual_seed(1)
    return [[(torch.randint(3, vocab, (n,), generator=g).tolist(), 2) for n in row] for row in LENGTHS]


def llama(lora_dropout: float, fused: bool) -> torch.nn.Module:
    """A tiny GQA Llama (4 heads over 2) with LoRA on every projection, its B matrices non-zero."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=100,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config)
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=lora_dropout, target_modules=PROJECTIONS)
    model = get_peft_model(model, lora)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    if fused:
        assert fuse(model) == 2 * len(PROJECTIONS)
    return model


def loss_and_grads(model: torch.nn.Module, attention: str, seed: int = 5) -> tuple[torch.Tensor, dict]:
    """Summed loss of the packed blocks and every trainable parameter's gradient (train mode)."""
    loss = LMLoss(model).train()
    torch.manual_seed(seed)  # the dropout masks' draws
    total, _ = loss(**collate(blocks(model.config.vocab_size), 96, 0, attention))
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(a: tuple[torch.Tensor, dict], b: tuple[torch.Tensor, dict]) -> None:
    """Loss and gradients equal up to fp32 rounding (1e-5 of each tensor's largest entry)."""
    assert torch.allclose(a[0], b[0], rtol=1e-5)
    assert a[1].keys() == b[1].keys() and a[1]
    for name, grad in a[1].items():
        assert (grad - b[1][name]).abs().max() <= 1e-5 * grad.abs().max(), name


@pytest.mark.parametrize(("attention", "fused"), [("segments", False), ("mask", True), ("segments", True)])
def test_llama_lora_loss_and_grads_equal_todays(attention, fused):
    today = loss_and_grads(llama(0.05, fused=False), "mask")
    assert_same(loss_and_grads(llama(0.05, fused), attention), today)
    other_masks = loss_and_grads(llama(0.05, fused=False), "mask", seed=6)
    assert not torch.allclose(other_masks[0], today[0], rtol=1e-4)  # the dropout draws matter, and match


def test_gpt2_segments_equal_the_mask():
    def run(attention: str) -> tuple[torch.Tensor, dict]:
        torch.manual_seed(0)
        config = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=128, resid_pdrop=0.0)
        config.embd_pdrop = config.attn_pdrop = 0.0
        return loss_and_grads(GPT2LMHeadModel(config), attention)

    assert_same(run("segments"), run("mask"))


def test_fused_lora_in_eval_and_with_the_adapter_disabled():
    peft_model, fused_model = llama(0.05, fused=False).eval(), llama(0.05, fused=True).eval()
    ids = torch.randint(3, 100, (2, 24))
    with torch.no_grad():
        assert torch.allclose(fused_model(ids).logits, peft_model(ids).logits, atol=1e-5)
        with fused_model.disable_adapter(), peft_model.disable_adapter():
            assert torch.allclose(fused_model(ids).logits, peft_model(ids).logits, atol=1e-5)


def test_fused_lora_under_bf16_autocast_stays_close():
    """bf16 autocast (``--precision bf16``): both forwards round differently; within bf16's 1%."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = loss_and_grads(llama(0.0, fused=True), "segments")
        today = loss_and_grads(llama(0.0, fused=False), "mask")
    assert torch.allclose(fused[0], today[0], rtol=1e-2)


def test_layout_buckets_by_length_and_covers_every_token():
    segments = layout([(0, 30), (30, 50), (96, 96), (192, 5), (197, 70)], bucket=64)
    widths = [b.gather.shape[1] for b in segments.buckets]
    assert widths == [50, 96]  # 30, 50, 5 in the first bucket; 96 and 70 in the second
    covered = torch.cat([b.dst for b in segments.buckets]).sort().values
    assert covered.tolist() == list(range(0, 80)) + list(range(96, 267))


def metrics_losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r] + [r["val_loss"] for r in rows if "val_loss" in r]


def test_training_run_is_the_same_with_segments_and_fused_lora(tiny_llama_base, sample_data, tmp_path):
    """Three LoRA steps on the tiny Llama (tag dropout, LoRA dropout, validation) through the whole loop."""
    settings = {"from_scratch": None, "base": str(tiny_llama_base), "lora": True, "lora_r": 4, "steps": 3}
    settings.update(eval_every=3, tag_dropout=0.15)
    train(tiny_config(sample_data, tmp_path / "today", **settings))
    train(tiny_config(sample_data, tmp_path / "new", attention="segments", lora_forward="fused", **settings))
    today, new = metrics_losses(tmp_path / "today"), metrics_losses(tmp_path / "new")
    assert len(today) == 5 and new == pytest.approx(today, rel=1e-4)  # metrics keep 5 decimals
    saved = json.loads((tmp_path / "new" / "config.json").read_text())["train"]
    assert saved["attention"] == "segments" and saved["lora_forward"] == "fused"
