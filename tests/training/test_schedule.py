"""The learning-rate schedule: transformers' warm-up cosine draws the curve the hand-written one did."""

from __future__ import annotations

import math

import pytest
import torch

from linernotes.training.config import TrainConfig
from linernotes.training.loop import lr_schedule


def old_curve(step: int, warm: int, total: int, floor: float) -> float:
    """The multiplier the removed hand-written ``lr_lambda`` gave (warm-up counted from step 1)."""
    if step < warm:
        return (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))


def lrs(config: TrainConfig, total: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
    sched = lr_schedule(opt, config, total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(("warmup", "total", "warm"), [(10, 200, 10), (50, 40, 4), (0, 30, 0)])
def test_schedule_is_the_old_curve(warmup: int, total: int, warm: int) -> None:
    config = TrainConfig(data="d", out="o", lr=2.0, warmup_steps=warmup, min_lr_ratio=0.1)
    got = lrs(config, total)
    # After warm-up, step for step the old cosine (to float precision) down towards lr * min_lr_ratio.
    for step in range(warm, total):
        assert got[step] == pytest.approx(2.0 * old_curve(step, warm, total, 0.1), rel=1e-12)
    # Warm-up is the same straight line, started one step earlier (transformers begins at 0).
    for step in range(1, warm):
        assert got[step] == pytest.approx(2.0 * old_curve(step - 1, warm, total, 0.1), rel=1e-12)
    if warm:
        assert got[0] == 0.0 and got[warm] == pytest.approx(2.0)
    assert 0.2 < got[-1] < 0.2 + 1e-2  # the last step sits just above the floor, lr * min_lr_ratio
