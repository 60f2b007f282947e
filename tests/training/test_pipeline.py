"""The one prepare -> train -> export path the demo, benchmarks and fixtures share."""

from __future__ import annotations

import pytest

from linernotes.common.errors import ConfigError
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.training.pipeline import RECIPES, build, reexport, steps_for_budget, train_config
from linernotes.training.steering import Steering
from tests.conftest import SAMPLE


def test_demo_recipe_end_to_end_on_a_gguf_base(tiny_llama, tmp_path):
    """The demo's recipe (LoRA on a pretrained base, merged, int8) at a tiny size, from a GGUF file."""
    said: list[str] = []
    built = build(
        [SAMPLE], tmp_path, "demo", "int8", Steering(guidance=1.5), say=said.append,
        base=str(tiny_llama[2]), steps=3, eval_every=3, progress=False,
    )  # fmt: skip
    assert built.summary["steps"] == 3 and built.stats["kept"] > 400
    card = read_card(built.checkpoint)
    assert card.precision == "int8" and card.adapter is None  # merged: one self-contained model
    assert card.training["lora"] and card.training["tag_dropout"] == RECIPES["demo"]["tag_dropout"]
    assert card.training["lora_dropout"] == RECIPES["demo"]["lora_dropout"]
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


def test_steps_for_budget_times_steady_state_steps_of_the_recipe(sample_data, tmp_path):
    """A real probe of the tiny recipe, on a clock where the first two steps are slow (start-up)."""
    config = train_config("tiny", sample_data, tmp_path / "run")
    ticks = iter([0.0, 30.0, 60.0] + [60.0 + 0.5 * i for i in range(1, 100)])
    seen: list[float] = []

    def clock() -> float:
        seen.append(next(ticks))
        return seen[-1]

    # 0.5 s per steady step: 2 minutes hold 240 steps, 216 with the 10% margin for validation passes.
    # (Timing the slow first steps too would give a median of 30 s and 3 steps.)
    assert steps_for_budget(config, 2.0, probe_steps=4, clock=clock) == 216
    assert len(seen) == 4  # one stamp per probe step: the probe really trained probe_steps steps
    assert not (tmp_path / "run").exists()  # the probe ran elsewhere and left the run directory alone
    with pytest.raises(ConfigError, match="at least 4"):
        steps_for_budget(config, 1.0, probe_steps=3)
    with pytest.raises(ConfigError, match="budget must be positive"):
        steps_for_budget(config, 0.0)


def test_reexport_stamps_a_chosen_guidance_at_the_same_precision_merging_an_adapter(tiny_llama, tmp_path):
    kept = Steering(candidates={"review": 3}, repetition_penalty={"lyrics": 1.02})
    built = build(
        [SAMPLE], tmp_path, "demo", "int8", kept, say=lambda _: None,
        base=str(tiny_llama[2]), steps=2, eval_every=2, progress=False,
    )  # fmt: skip
    assert built.card.generation["guidance"] == 1.0
    card = reexport(tmp_path, guidance=2.0)
    assert card.generation["guidance"] == 2.0 and card.precision == "int8" and card.adapter is None
    # What was not given stays as the checkpoint had it.
    assert (card.candidates("review"), card.repetition_penalty("lyrics"), card.contrast("review")) == (
        3,
        1.02,
        0,
    )
    assert read_card(built.checkpoint) == card
    # Another default scale is another model to the bot's cache, even when exported within the same second.
    assert card.model_id != built.card.model_id
