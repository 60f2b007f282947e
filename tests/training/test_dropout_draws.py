"""``--dropout-draws bits``: LoRA dropout with masks from 64-bit random words, at the rate asked for."""

from __future__ import annotations

import math

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from linernotes.common.errors import ConfigError
from linernotes.training.config import TrainConfig
from linernotes.training.fused_lora import fuse, keep_mask
from linernotes.training.loop import train
from tests.conftest import tiny_config
from tests.training.test_same_loss import llama, loss_and_grads, metrics_losses

CPU = torch.device("cpu")


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_keep_mask_drops_at_the_rate_in_every_slice_of_a_word(p):
    torch.manual_seed(0)
    keep, kept = keep_mask(torch.Size([1000, 1000]), p, CPU)
    assert keep.dtype == torch.bool and keep.shape == (1000, 1000)
    assert kept == (32768 - round(p * 32768)) / 32768
    dropped = 1 - kept
    for share, n in [(1 - keep.float().mean(), keep.numel())] + [
        (1 - lane.float().mean(), lane.numel()) for lane in keep.view(-1, 4).unbind(1)
    ]:  # the whole mask, then each of a word's four slices (its top one has no sign bit to lean on)
        assert abs(float(share) - dropped) < 5 * math.sqrt(dropped * (1 - dropped) / n)


def test_keep_mask_follows_the_generator():
    shape = torch.Size([64, 33])  # not a multiple of four draws
    torch.manual_seed(3)
    first, _ = keep_mask(shape, 0.2, CPU)
    torch.manual_seed(3)
    again, _ = keep_mask(shape, 0.2, CPU)
    other, _ = keep_mask(shape, 0.2, CPU)
    assert torch.equal(first, again) and not torch.equal(first, other)


class One(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def test_bits_forward_is_lora_on_the_masked_input_rescaled():
    torch.manual_seed(0)
    model = get_peft_model(One(), LoraConfig(r=2, lora_alpha=4, lora_dropout=0.25, target_modules=["proj"]))
    layer = model.base_model.model.proj
    nn.init.normal_(layer.lora_B["default"].weight, std=0.5)
    assert fuse(model, "bits") == 1
    x = torch.randn(3, 5, 16)
    torch.manual_seed(7)
    out = model.train()(x)
    torch.manual_seed(7)
    keep, kept = keep_mask(torch.Size([15, 16]), 0.25, CPU)
    a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
    lora = (x.reshape(15, 16) * keep) @ a.t() @ b.t() * layer.scaling["default"] / kept
    assert torch.allclose(out, layer.base_layer(x) + lora.view(3, 5, 8), atol=1e-6)
    out.sum().backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_bits_draw_other_masks_than_torch():
    torch_draws = loss_and_grads(llama(0.05, fused=True), "segments")
    model = llama(0.05, fused=True)
    fuse(model, "bits")
    bits = loss_and_grads(model, "segments")
    assert torch.isfinite(bits[0]) and not torch.allclose(bits[0], torch_draws[0], rtol=1e-5)
    assert abs(float(bits[0]) - float(torch_draws[0])) < 0.05 * float(torch_draws[0])  # dropout, not a bug


def test_bits_need_the_fused_forward(tmp_path):
    with pytest.raises(ConfigError, match="--dropout-draws bits needs --lora-forward fused"):
        TrainConfig(data=str(tmp_path), out=str(tmp_path / "run"), lora=True, dropout_draws="bits")


def test_a_run_with_bits_trains_and_records_them(tiny_llama_base, sample_data, tmp_path):
    settings = {"from_scratch": None, "base": str(tiny_llama_base), "lora": True, "lora_r": 4, "steps": 3}
    settings.update(eval_every=3, tag_dropout=0.15, lora_forward="fused", dropout_draws="bits")
    train(tiny_config(sample_data, tmp_path / "run", **settings))
    losses = metrics_losses(tmp_path / "run")
    assert len(losses) == 5 and all(math.isfinite(x) for x in losses)
