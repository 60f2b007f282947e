"""An int8 checkpoint's weights as floats, read straight from its files, in a model of its own class.

Training a server's adapter starts from the bot's int8 checkpoint, and exporting the adapter loads that
base again: twice per ``/model train``. Through bitsandbytes (``from_pretrained`` with its quantizer, then
``dequantize()``, then a fresh model of the class to load the floats into) that took about 5 s each time
on a 2-core CPU: bitsandbytes' CPU dequantization runs 420 small mixed-type multiplications (every
weight twice), and the fresh model initialised 135M random weights only to overwrite them. Here each
int8 weight is dequantized once, by bitsandbytes' own formula (so the floats are bit-identical: tested),
and the model is built by ``from_pretrained`` from that state dict, which skips the random init.

The model is of its own class, not bitsandbytes' rewrite of it: bitsandbytes replaces GPT-2's Conv1D
layers by Linear ones with transposed weights, which run, but what is saved from them (a full fine-tune,
a merged adapter) no longer loads into GPT-2; and a dequantized model still calls itself 8-bit, which
peft reads.

The files are the ones bitsandbytes' LLM.int8 serialisation writes: per quantized linear layer ``X.weight``
(int8, out x in), ``X.SCB`` (its rows' absolute maxima, float32) and ``X.weight_format``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

# bitsandbytes' int8_vectorwise_dequant multiplies by this reciprocal of 127 (not a division): the same
# constant keeps the floats identical to what bitsandbytes would have produced.
RECIPROCAL_127 = 7.874015718698502e-3
SINGLE, INDEX = "model.safetensors", "model.safetensors.index.json"


def dequantized_state(tensors: dict[str, torch.Tensor], transposed: set[str]) -> dict[str, torch.Tensor]:
    """bitsandbytes int8 tensors -> float32 weights; ``transposed`` names weights the model class stores
    (in, out) (GPT-2's Conv1D, which bitsandbytes replaced by a Linear layer, out x in)."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if key.endswith((".SCB", ".weight_format")):
            continue  # read with their weight
        if tensor.dtype == torch.int8:
            scale = tensors[key.removesuffix("weight") + "SCB"]  # (out,)
            tensor = tensor.float() * scale.view(-1, 1) * RECIPROCAL_127  # (out, in)
            if key in transposed:
                tensor = tensor.t().contiguous()
        state[key] = tensor
    return state


def read_tensors(source: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's safetensors file(s), one file or shards named by the index."""
    from safetensors.torch import load_file

    if (source / SINGLE).is_file():
        return load_file(source / SINGLE)
    shards = sorted(set(json.loads((source / INDEX).read_text())["weight_map"].values()))
    return {key: t for shard in shards for key, t in load_file(source / shard).items()}


def load_dequantized(source: Path) -> Any:
    """The int8 checkpoint in ``source`` as a float32 model of its own class (no quantization config)."""
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig
    from transformers.pytorch_utils import Conv1D

    config = AutoConfig.from_pretrained(source, local_files_only=True)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # only to learn the class and which weights it stores transposed
        skeleton = AutoModelForCausalLM.from_config(config)
    transposed = {f"{name}.weight" for name, m in skeleton.named_modules() if isinstance(m, Conv1D)}
    state = dequantized_state(read_tensors(source), transposed)
    model = type(skeleton).from_pretrained(None, config=config, state_dict=state, dtype=torch.float32)
    # Where it came from, as from_pretrained(source) records it: peft names an adapter's base by it.
    model.name_or_path = model.config._name_or_path = str(source)
    if (source / "generation_config.json").is_file():
        model.generation_config = GenerationConfig.from_pretrained(source, local_files_only=True)
    return model
