"""One adapter checkpoint served on its own: its base with the LoRA applied by ``model.lora`` (merged into
float weights, added beside int8 ones), computing what peft's PeftModel computes, on GPT-2 (fused Conv1D)
and Llama; checked like every adapter, at the scale its config asks for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from linernotes.common.errors import AdapterError, ConfigError
from linernotes.model.backends import LocalBackend
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint, save_checkpoint
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.model.lora import FixedLora, LoraLinear, read_lora
from tests.model.test_adapters import ONCE, _edit_config, make_adapter

# (base checkpoint, precision the adapter is loaded at): float bases take the merge, int8 ones the runtime
# LoRA; an int8 checkpoint loaded as fp32 is dequantized (into GPT-2's own Conv1D layers) and merged.
CASES = [
    ("gpt2-fp32", "fp32"),
    ("gpt2-int8", "fp32"),
    ("gpt2-int8", "int8"),
    ("llama-fp32", "fp32"),
    ("llama-fp32", "int8"),
    ("llama-int8", "int8"),
]


@pytest.fixture(scope="module")
def single(checkpoints, tmp_path_factory) -> dict[str, Path]:
    """One adapter (random, nonzero B) on every projection of each base checkpoint, by base name."""
    out = tmp_path_factory.mktemp("single")
    return {name: make_adapter(base, out / name, seed=5) for name, base in checkpoints.items()}


def peft_model(adapter: Path, precision: str):
    """The adapter as it was served before: its base at ``precision`` wrapped by peft's PeftModel."""
    from peft import PeftModel

    base = load_checkpoint(Path(read_card(adapter).adapter["base"]), precision, "cpu").model
    return PeftModel.from_pretrained(base, str(adapter)).eval()


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    """Logits (rows, T, vocab) of ``ids`` (rows, T)."""
    with torch.inference_mode():
        return model(input_ids=ids).logits


def some_ids(tokenizer, rows: int = 3, length: int = 9) -> torch.Tensor:
    """Random token ids (rows, length), the same every run."""
    return torch.randint(0, len(tokenizer), (rows, length), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("name", "precision"), CASES)
def test_an_adapter_checkpoint_computes_what_peft_does(single, checkpoints, name, precision):
    loaded = load_checkpoint(single[name], precision, "cpu")
    ids = some_ids(loaded.tokenizer)
    ours = logits(loaded.model, ids)
    assert torch.allclose(ours, logits(peft_model(single[name], precision), ids), atol=1e-5, rtol=1e-5)
    # The adapter changed what the base computes.
    base = load_checkpoint(checkpoints[name], precision, "cpu").model
    assert not torch.allclose(ours, logits(base, ids), atol=1e-3)
    # No peft in the served model: its own class, merged where float, a runtime LoRA beside int8 layers.
    assert type(loaded.model) is type(base)
    assert not any("peft" in type(m).__module__ for m in loaded.model.modules())
    assert not any(isinstance(m, LoraLinear) for m in loaded.model.modules())
    fixed = [m for m in loaded.model.modules() if isinstance(m, FixedLora)]
    assert len(fixed) == (len(read_lora(single[name], base).layers) if precision == "int8" else 0)


@pytest.mark.parametrize("name", ["gpt2-fp32", "llama-fp32"])
def test_greedy_generation_writes_what_peft_wrote(single, name):
    adapter, config = single[name], GenerateConfig(**ONCE)
    ours = Generator.load(adapter, config)
    card = read_card(adapter)
    peft_backend = LocalBackend(peft_model(adapter, "fp32"), ours.backend.tokenizer)
    before = Generator(peft_backend, card, ours.guard, config)
    greedy = Sampling(temperature=0, max_new_tokens=24)
    requests = [Request("lyrics", {"part": p}, sampling=greedy.with_seed(1)) for p in ("chorus", "hook")]
    written = [(r.text, r.tokens, r.stop, r.model_id) for r in ours.generate(requests)]
    assert written == [(r.text, r.tokens, r.stop, r.model_id) for r in before.generate(requests)]
    assert all(w[1] > 0 and w[3] == card.model_id for w in written)


@pytest.mark.parametrize(("settings", "scale"), [({}, 8 / 4), ({"use_rslora": True}, 8 / 2)])
@pytest.mark.parametrize("name", ["gpt2-fp32", "llama-fp32"])
def test_the_scale_is_the_configs(checkpoints, tmp_path, name, settings, scale):
    from safetensors.torch import load_file

    # Rank 4, alpha 8: alpha / r, or alpha / sqrt(r) with rsLoRA; dropout is training's alone.
    adapter = make_adapter(checkpoints[name], tmp_path / "a", 7, lora_alpha=8, lora_dropout=0.3, **settings)
    loaded = load_checkpoint(adapter, "fp32", "cpu")
    stored = load_file(adapter / "adapter_model.safetensors")
    weights = read_lora(adapter, load_checkpoint(checkpoints[name], "fp32", "cpu").model)
    for layer, (a, b) in weights.layers.items():
        prefix = f"base_model.model.{layer}"
        assert torch.equal(a, stored[f"{prefix}.lora_A.weight"].t())
        assert torch.equal(b, scale * stored[f"{prefix}.lora_B.weight"].t())
    reference = peft_model(adapter, "fp32")
    ids = some_ids(loaded.tokenizer)
    assert torch.allclose(logits(loaded.model, ids), logits(reference, ids), atol=1e-5, rtol=1e-5)


# Settings under which a LoRA means more than A and B at one scale: refused before any weight is read.
VARIANTS = {
    "DoRA": {"use_dora": True},
    "per-module ranks": {"rank_pattern": {"c_fc": 8}},
    "per-module scaling": {"alpha_pattern": {"c_fc": 32}},
    "extra trained modules": {"modules_to_save": ["lm_head"]},
    "trained biases": {"bias": "lora_only"},
    "a trained LoRA bias": {"lora_bias": True},
    "an initialisation that rewrites the base's weights": {"init_lora_weights": "pissa_niter_4"},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_config_lora_does_not_serve_is_refused_on_load(single, tmp_path, variant):
    adapter = tmp_path / "variant"
    shutil.copytree(single["gpt2-fp32"], adapter)
    _edit_config(adapter, **VARIANTS[variant])
    with pytest.raises(AdapterError) as e:
        load_checkpoint(adapter, "fp32", "cpu")
    assert e.value.reason.startswith(f"the adapter uses {variant}")
    assert e.value.reason.endswith("which linernotes does not serve")


def test_an_init_alone_or_a_converted_adapter_loads(single, tmp_path):
    # Gaussian changes only where training starts; peft saves a PiSSA adapter converted to plain LoRA as
    # "true". Either is plain LoRA once trained.
    ids = some_ids(load_checkpoint(single["gpt2-fp32"], "fp32", "cpu").tokenizer)
    plain = logits(load_checkpoint(single["gpt2-fp32"], "fp32", "cpu").model, ids)
    for init in ("gaussian", True):
        adapter = tmp_path / str(init)
        shutil.copytree(single["gpt2-fp32"], adapter)
        _edit_config(adapter, init_lora_weights=init)
        assert torch.equal(logits(load_checkpoint(adapter, "fp32", "cpu").model, ids), plain)


def test_a_loaded_adapter_checkpoint_is_not_saved_as_one(single, tmp_path):
    loaded = load_checkpoint(single["gpt2-fp32"], "fp32", "cpu")
    with pytest.raises(ConfigError, match="written from the peft model training made"):
        save_checkpoint(tmp_path / "again", loaded.model, loaded.tokenizer, loaded.card)
    assert not (tmp_path / "again").exists()
