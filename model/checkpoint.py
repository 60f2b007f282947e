"""The one save/load pair for checkpoints: weights (int8, fp16 or fp32), tokenizer, card, extras.

Training's export writes with ``save_checkpoint``; the generator, the bot and evaluation read with
``load_checkpoint``. Writes go to a temporary directory renamed into place, so a crash or a full disk
never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.model.atomic import atomic_dir
from linernotes.model.bases import resolve_base
from linernotes.model.card import CARD_FILE, WEIGHT_PRECISIONS, Card, read_card, write_card
from linernotes.model.dequant import load_dequantized
from linernotes.model.quiet import quiet_transformers

log = logging.getLogger(__name__)

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


@dataclass
class Loaded:
    """A checkpoint in memory: model (eval mode), tokenizer, card, and where/how it runs."""

    model: Any
    tokenizer: Any
    card: Card
    device: torch.device
    precision: str
    path: Path


def save_checkpoint(
    out: Path,
    model: Any,
    tokenizer: Any,
    card: Card,
    precision: str = "fp32",
    extras: Callable[[Path], None] | None = None,
) -> Path:
    """Write a self-describing checkpoint; ``extras(dir)`` may add files (e.g. the copy-guard index)."""
    if precision not in WEIGHT_PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(WEIGHT_PRECISIONS)}, got {precision!r}")
    if card.adapter and not hasattr(model, "peft_config"):
        # A loaded adapter checkpoint is its base with the LoRA merged in: saved, it would be a whole model.
        raise ConfigError("an adapter checkpoint is written from the peft model training made")
    quiet_transformers()
    card.precision = precision

    def write(tmp: Path) -> None:
        if card.adapter:
            model.save_pretrained(tmp)  # PEFT saves only the adapter
        elif precision == "int8":
            _save_int8(model, tmp)
        else:
            model.to(_DTYPES[precision]).save_pretrained(tmp)
            model.to(torch.float32)
        tokenizer.save_pretrained(tmp)
        write_card(tmp, card)
        if extras:
            extras(tmp)

    return atomic_dir(out, write)


def _save_int8(model: Any, out: Path) -> None:
    """Quantize through bitsandbytes: save fp32, reload with LLM.int8() weights, save those."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    with tempfile.TemporaryDirectory(dir=out.parent) as fp32:
        model.save_pretrained(fp32)
        q = AutoModelForCausalLM.from_pretrained(
            fp32, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="cpu"
        )
        q.save_pretrained(out)


def pick_device(device: str) -> torch.device:
    """``auto`` is CUDA when visible, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r} is not a torch device (try cpu, cuda, cuda:1)") from None


def resolve_precision(stored: str, requested: str, device: torch.device) -> str:
    """What to load as. ``auto``: as stored, except half precision on CPU, which loads as fp32 (CPU
    half matmuls are slow). An int8 checkpoint stays int8 (what the export wrote, at 40% of fp32's weight
    memory), although on a CPU it generates slower: bench/generate_throughput.py measured the 135M base
    at 0.75x fp32's speed in a batch and 0.64x alone, so the README tells CPU hosts with memory to spare
    to ask for fp32."""
    if requested == "auto":
        return "fp32" if device.type == "cpu" and stored in ("fp16", "bf16") else stored
    if requested not in WEIGHT_PRECISIONS:
        raise ConfigError(
            f"--precision must be auto or one of {', '.join(WEIGHT_PRECISIONS)}, got {requested!r}"
        )
    return requested


def load_checkpoint(path: Path, precision: str = "auto", device: str = "auto") -> Loaded:
    """Load a checkpoint for inference; every failure names the checkpoint and what is wrong."""
    path = Path(path)
    card = read_card(path)
    dev = pick_device(device)
    want = resolve_precision(card.precision, precision, dev)
    quiet_transformers()
    try:
        tokenizer = _load_tokenizer(path)
        model = _load_adapter(path, card, want, dev) if card.adapter else _load_weights(path, card, want, dev)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError, pickle.UnpicklingError) as e:
        raise CheckpointError(
            f"{path}: weights or tokenizer could not be loaded ({type(e).__name__}: {e})"
        ) from None
    model.eval()
    return Loaded(model, tokenizer, card, dev, want, path)


def _load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def _load_weights(
    path: Path, card: Card, want: str, dev: torch.device, source: Path | str | None = None
) -> Any:
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    source = source or path
    kwargs: dict[str, Any] = {"local_files_only": True}
    if want == "int8":
        if card.precision != "int8":
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["device_map"] = {"": dev.index or 0} if dev.type == "cuda" else "cpu"
        return AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if card.precision == "int8":  # asked for floats: dequantized from its files (model/dequant.py)
        return load_dequantized(Path(source)).to(device=dev, dtype=_DTYPES[want])
    return AutoModelForCausalLM.from_pretrained(source, dtype=_DTYPES[want], **kwargs).to(dev)


def is_checkpoint(path: Path | str) -> bool:
    """Whether ``path`` is a linernotes checkpoint directory (it has a card)."""
    return (Path(path) / CARD_FILE).is_file()


def _load_adapter(path: Path, card: Card, want: str, dev: torch.device) -> Any:
    """An adapter checkpoint's base at ``want`` with the adapter applied by ``model.lora`` (merged into
    float weights: as fast as the base), after the check every adapter passes (``model.lora_check``)."""
    from linernotes.model.lora import apply_lora

    adapter = card.adapter or {}
    if "base_model_id" in adapter:
        model = _checkpoint_base(path, adapter, want, dev)
    else:
        model = _hub_base(path, card, want, dev)
    apply_lora(model, path)
    return model


def _hub_base(path: Path, card: Card, want: str, dev: torch.device) -> Any:
    """An adapter's base named like ``--base``: a hub name, a Hugging Face directory or an offline base."""

    base = resolve_base(card.adapter["base"]) if card.adapter else ""
    base_card = Card(**{**card.__dict__, "precision": "fp32", "adapter": None})
    try:
        return _load_weights(path, base_card, want, dev, source=base)
    except OSError as e:
        raise CheckpointError(
            f"{path}: is a LoRA adapter for base {base!r}, which could not be loaded locally ({e})"
        ) from None


def _checkpoint_base(path: Path, adapter: dict[str, Any], want: str, dev: torch.device) -> Any:
    """The linernotes checkpoint an adapter was trained on, at ``want``; refused when it is gone or holds
    another model now (a re-export of the base changes its weights, so the adapter no longer fits)."""
    base = Path(adapter["base"])
    require_base(path, base, adapter["base_model_id"])
    return load_checkpoint(base, want, str(dev)).model


def require_base(owner: Path, base: Path, model_id: str) -> None:
    """Raise unless ``base`` is a checkpoint still holding ``model_id``, the model ``owner`` (an adapter or
    its run) was trained on."""
    if not is_checkpoint(base):
        raise CheckpointError(
            f"{owner}: was trained on checkpoint {base} (model {model_id}), which is missing"
        )
    found = read_card(base).model_id
    if found != model_id:
        raise CheckpointError(
            f"{owner}: was trained on model {model_id}, but its base {base} now holds {found}; "
            "train it again on that checkpoint"
        )
