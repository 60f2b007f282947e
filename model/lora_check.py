"""An adapter checkpoint's LoRA files checked without loading them: its config's types and ranges, and
every tensor's name, type and shape against the layers of the model it adapts.

One check for every way an adapter comes in: ``linernotes models add``, the trainer's output, the bot
attaching adapters at start-up and an adapter checkpoint loaded on its own (``model.lora.read_lora`` runs
it against the loaded model). The layers come either from a loaded model or from a base checkpoint's config
built on the meta device (``base_layers``): no weights are read, which takes tens of milliseconds (GPT-2
small 37 ms, the 135M Llama base 31 ms on this CPU, once the architecture's code is imported). Tensors are
checked from the safetensors header alone, so a refused adapter costs no memory.

Messages say what is wrong inside the adapter, never where it lies (``AdapterError.reason``): the bot
shows them to a server's members.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from linernotes.common.errors import AdapterError, CheckpointError

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
MAX_RANK = 256  # beyond any LoRA worth serving; bounds the memory an adapter can ask for
PREFIX = "base_model.model."  # how peft names the wrapped model in a saved adapter
ENDS = {".lora_A.weight": "A", ".lora_B.weight": "B"}
_FLOATS = {"F64", "F32", "F16", "BF16"}
# Settings of a peft LoRA that change what its weights mean; a checkpoint using any is refused.
_VARIANTS = {
    "use_dora": "DoRA",
    "modules_to_save": "extra trained modules (modules_to_save)",
    "rank_pattern": "per-module ranks (rank_pattern)",
    "alpha_pattern": "per-module scaling (alpha_pattern)",
    "lora_bias": "a trained LoRA bias",
    "layer_replication": "layer replication",
    "trainable_token_indices": "trained token embeddings",
    "target_parameters": "LoRA on parameters (target_parameters)",
    "alora_invocation_tokens": "activated LoRA (alora_invocation_tokens)",
    "use_qalora": "QALoRA",
    "use_bdlora": "block-diagonal LoRA (use_bdlora)",
    "arrow_config": "Arrow routing (arrow_config)",
    "kasa_config": "KaSA (kasa_config)",
    "monteclora_config": "MonteCLoRA (monteclora_config)",
}
# Initialisations that also rewrite the base's weights: such an adapter fits only the base it rewrote, unless
# peft converted it to plain LoRA when saving (path_initial_model_for_weight_conversion), which sets "true".
_REWRITING_INITS = ("pissa", "olora", "corda", "loftq", "lora_ga")
Layers = Mapping[str, "tuple[int, int] | None"]  # module path -> (in, out) features; None: not linear


@dataclass(frozen=True)
class LoraSpec:
    """What an adapter's LoRA files hold, once checked: its rank, its scale and the layers it adapts."""

    rank: int
    scale: float
    modules: tuple[str, ...]


def check_lora(path: Path, layers: Layers) -> LoraSpec:
    """Check the LoRA files of the adapter checkpoint at ``path`` against a model's ``layers``."""
    path = Path(path)
    rank, scale = read_config(path)
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, (shape, dtype) in _tensors(path).items():
        end = next((e for e in ENDS if key.endswith(e)), None)
        if end is None or not key.startswith(PREFIX):
            raise AdapterError.of(path, f"{WEIGHTS}: unexpected tensor {shown(key)} in a LoRA adapter")
        if dtype not in _FLOATS:
            raise AdapterError.of(
                path, f"{WEIGHTS}: tensor {shown(key)} holds {shown(dtype)}, not floating-point numbers"
            )
        pairs.setdefault(key[len(PREFIX) : -len(end)], {})[ENDS[end]] = shape
    if not pairs:
        raise AdapterError.of(path, f"{WEIGHTS}: the adapter holds no LoRA weights")
    for name, pair in pairs.items():
        n_in, n_out = _dims(path, layers, name)
        if pair.get("A") != (rank, n_in) or pair.get("B") != (n_out, rank):
            raise AdapterError.of(
                path,
                f"{WEIGHTS}: the LoRA weights of {shown(name)} do not fit the layer ({n_in} in, {n_out} out, "
                f"rank {rank}): A is {_shape(pair.get('A'))}, B is {_shape(pair.get('B'))}",
            )
    return LoraSpec(rank, scale, tuple(pairs))


def read_config(path: Path) -> tuple[int, float]:
    """The rank and scale of the plain LoRA ``adapter_config.json`` describes; refuses any other."""
    config = _config(path)
    r, alpha = config.get("r"), config.get("lora_alpha")
    if not (_is_int(r) and 1 <= r <= MAX_RANK):
        raise AdapterError.of(path, f'{CONFIG}: "r" is {shown(r)}, not a whole number from 1 to {MAX_RANK}')
    if not (_is_number(alpha) and math.isfinite(alpha) and alpha > 0):
        raise AdapterError.of(path, f'{CONFIG}: "lora_alpha" is {shown(alpha)}, not a positive number')
    targets = config.get("target_modules")
    # peft writes a list of module names, or one regular expression as a string.
    if not (
        isinstance(targets, str) or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))
    ):
        raise AdapterError.of(path, f'{CONFIG}: "target_modules" is {shown(targets)}, not a list of names')
    rslora = config.get("use_rslora", False)
    if not isinstance(rslora, bool):
        raise AdapterError.of(path, f'{CONFIG}: "use_rslora" is {shown(rslora)}, not true or false')
    return r, float(alpha) / (math.sqrt(r) if rslora else r)


def _config(path: Path) -> dict[str, Any]:
    """The adapter's config as a JSON object, refused unless it is a peft LoRA using no variant."""
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AdapterError.of(path, f"no readable {CONFIG} ({why(e)})") from None
    if not isinstance(config, dict):
        raise AdapterError.of(path, f"{CONFIG}: not a JSON object")
    if config.get("peft_type") != "LORA":
        raise AdapterError.of(path, f"{CONFIG}: a {shown(config.get('peft_type'))} adapter, not LoRA")
    used = [what for key, what in _VARIANTS.items() if config.get(key)]
    if config.get("bias", "none") != "none":
        used.append(f"trained biases (bias={shown(config['bias'])})")
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(_REWRITING_INITS):
        used.append(f"an initialisation that rewrites the base's weights (init_lora_weights={shown(init)})")
    if used:
        raise AdapterError.of(path, f"the adapter uses {', '.join(used)}, which linernotes does not serve")
    return config


def _tensors(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's (shape, dtype) from the safetensors header; the weights themselves are not read."""
    from safetensors import SafetensorError, safe_open

    file = path / WEIGHTS
    if not file.is_file():
        pickled = (path / "adapter_model.bin").is_file()
        # A pickle can run code when loaded: linernotes reads safetensors only.
        only = " (only adapter_model.bin, a pickle, which linernotes never loads)" if pickled else ""
        raise AdapterError.of(path, f"no {WEIGHTS}{only}; save the adapter as safetensors")
    try:
        with safe_open(str(file), framework="pt") as f:
            slices = {k: f.get_slice(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle, not a dict)
            return {k: (tuple(s.get_shape()), s.get_dtype()) for k, s in slices.items()}
    except (OSError, SafetensorError) as e:
        raise AdapterError.of(path, f"adapter weights could not be loaded ({WEIGHTS}: {why(e)})") from None


def _dims(path: Path, layers: Layers, name: str) -> tuple[int, int]:
    """(in, out) features of the layer ``name`` an adapter targets."""
    if name not in layers:
        raise AdapterError.of(path, f"the adapter targets {shown(name)}, which the model does not have")
    dims = layers[name]
    if dims is None:
        raise AdapterError.of(path, f"the adapter targets {shown(name)}, which is not a linear layer")
    return dims


def layer_dims(model: nn.Module) -> dict[str, tuple[int, int] | None]:
    """Every module of ``model`` by path: its (in, out) features if a linear layer, else None. A layer
    wrapped for adapters (it has a ``base_layer``) counts as the layer it wraps, its insides not at all."""
    return dict(_walk(model, ""))


def _walk(module: nn.Module, prefix: str) -> Iterator[tuple[str, tuple[int, int] | None]]:
    for name, child in module.named_children():
        path = prefix + name
        inner = getattr(child, "base_layer", None)
        if isinstance(inner, nn.Module):
            yield path, linear_features(inner)
            continue
        yield path, linear_features(child)
        yield from _walk(child, path + ".")


def linear_features(layer: nn.Module) -> tuple[int, int] | None:
    """(in, out) features of a linear layer; None for any other kind."""
    if isinstance(layer, nn.Linear):  # bitsandbytes' int8 layers included
        return layer.in_features, layer.out_features
    if type(layer).__name__ == "Conv1D":  # GPT-2's fused projections: weight (in, out)
        return layer.nx, layer.nf
    return None


def base_layers(checkpoint: Path) -> Layers:
    """The layers of the model in the checkpoint directory ``checkpoint``, from its config alone."""
    config = Path(checkpoint).resolve() / "config.json"
    try:
        stamp = config.stat().st_mtime_ns
    except OSError as e:
        raise CheckpointError(f"{checkpoint}: no readable config.json ({e})") from None
    return _built(str(config.parent), stamp)


@functools.lru_cache(maxsize=4)
def _built(checkpoint: str, stamp: int) -> Layers:
    """``base_layers``, once per checkpoint and version of its config (``stamp``)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            model = AutoModelForCausalLM.from_config(config)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{checkpoint}: config.json does not describe a model ({e})") from None
    return layer_dims(model)


def why(e: Exception) -> str:
    """What went wrong reading a file, for a reason a member may read: an OSError's text names the host
    path, so only its description is kept."""
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    return f"{type(e).__name__}: {e}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """A value as JSON writes it, cut short: a message quotes what an adapter holds, whatever its size."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _shape(shape: tuple[int, ...] | None) -> str:
    return "missing" if shape is None else "x".join(map(str, shape)) or "a scalar"
