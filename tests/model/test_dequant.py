"""An int8 checkpoint read as floats from its files: the same weights and logits as through bitsandbytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from linernotes.model.checkpoint import load_checkpoint
from linernotes.model.dequant import INDEX, SINGLE, read_tensors


def through_bitsandbytes(path: Path):
    """The way int8 checkpoints were read as floats before: bitsandbytes' loader, then its dequantize()."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, device_map="cpu")
    model.dequantize()
    return model.float().eval()


@pytest.mark.parametrize("name", ["gpt2-int8", "llama-int8"])
def test_same_weights_and_logits_as_bitsandbytes(checkpoints, name):
    path = checkpoints[name]
    ours = load_checkpoint(path, "fp32", "cpu").model
    reference = through_bitsandbytes(path)
    assert not hasattr(ours.config, "quantization_config")
    assert type(ours) is type(reference)
    theirs = reference.state_dict()
    conv = {f"{n}.weight" for n, m in ours.named_modules() if type(m).__name__ == "Conv1D"}
    assert bool(conv) == (name == "gpt2-int8")  # GPT-2 keeps its own Conv1D layers, transposed back
    for key, weight in ours.state_dict().items():
        expected = theirs[key].t() if key in conv else theirs[key]
        assert weight.dtype == torch.float32
        assert torch.equal(weight, expected), key
    if ours.get_output_embeddings() is not None and ours.config.tie_word_embeddings:
        assert ours.get_output_embeddings().weight is ours.get_input_embeddings().weight
    ids = torch.arange(3, 40).view(1, -1)
    with torch.no_grad():
        assert torch.equal(ours(ids).logits, reference(ids).logits)


def test_shards_named_by_the_index_are_read_as_one(checkpoints, tmp_path):
    tensors = load_file(checkpoints["llama-int8"] / SINGLE)
    keys = sorted(tensors)
    half = len(keys) // 2
    parts = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    for file, names in parts.items():
        save_file({k: tensors[k] for k in names}, tmp_path / file)
    weight_map = {k: file for file, names in parts.items() for k in names}
    (tmp_path / INDEX).write_text(json.dumps({"weight_map": weight_map}))
    read = read_tensors(tmp_path)
    assert read.keys() == tensors.keys()
    assert all(torch.equal(read[k], tensors[k]) for k in keys)
