"""The one prepare -> train -> export path the demo, benchmarks and fixtures share."""

from __future__ import annotations

import pytest

from data.errors import ConfigError
from model.card import read_card
from model.checkpoint import load_checkpoint
from tests.conftest import SAMPLE
from training.pipeline import RECIPES, build, train_config


def test_demo_recipe_end_to_end_on_a_gguf_base(tiny_llama, tmp_path):
    """The demo's recipe (LoRA on a pretrained base, merged, int8) at a tiny size, from a GGUF file."""
    said: list[str] = []
    built = build(
        [SAMPLE], tmp_path, "demo", "int8", guidance=1.5, say=said.append,
        base=str(tiny_llama[2]), steps=3, eval_every=3, progress=False,
    )  # fmt: skip
    assert built.summary["steps"] == 3 and built.stats["kept"] > 400
    card = read_card(built.checkpoint)
    assert card.precision == "int8" and card.adapter is None  # merged: one self-contained model
    assert card.training["lora"] and card.training["tag_dropout"] == RECIPES["demo"]["tag_dropout"]
    assert card.generation["guidance"] == 1.5 and card.base_model == str(tiny_llama[2])
    assert {"review", "lyrics", "product"} <= set(card.kinds)
    assert load_checkpoint(built.checkpoint, device="cpu").precision == "int8"
    assert [s.split()[0] for s in said] == ["Preparing", "Training", "Exporting"]
    # A second build reuses the prepared splits and retrains from nothing.
    said.clear()
    again = build([SAMPLE], tmp_path, "tiny", None, say=said.append, steps=2, eval_every=2)
    assert again.checkpoint is None and again.summary["steps"] == 2
    assert [s.split()[0] for s in said] == ["Training"]


def test_recipes_are_valid_train_configs_and_unknown_ones_are_named(tmp_path):
    for name in RECIPES:
        assert train_config(name, tmp_path, tmp_path / "run").data == str(tmp_path)
    assert train_config("tiny", tmp_path, tmp_path, steps=7).steps == 7
    with pytest.raises(ConfigError, match="recipe must be one of demo, scratch-small, tiny"):
        train_config("huge", tmp_path, tmp_path)
