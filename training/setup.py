"""The model and tokenizer a run starts from: a Hugging Face base (hub name or local dir), a linernotes
checkpoint, or a fresh GPT-2."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.data.format import END
from linernotes.model.bases import resolve_base
from linernotes.model.card import read_card
from linernotes.model.checkpoint import is_checkpoint, load_checkpoint
from linernotes.model.quiet import quiet_transformers
from linernotes.training.config import DEFAULT_RENDERING, SCRATCH, TrainConfig

log = logging.getLogger(__name__)
# Attention and MLP projections LoRA adapts: GPT-2's fused Conv1D layers, then Llama's (and most
# decoder-only models') separate linear layers.
LORA_TARGETS = (
    "c_attn", "c_proj", "c_fc",
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)  # fmt: skip


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``texts``, with GPT-2's end marker."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[END], show_progress=False
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token=END, bos_token=END, unk_token=END
    )
    tok.pad_token = END
    return tok


def scratch_model(preset: str, tokenizer: Any, block_size: int) -> Any:
    """A freshly initialised GPT-2 of the preset's shape, sized to the tokenizer and block."""
    from transformers import GPT2Config, GPT2LMHeadModel

    shape = {k: v for k, v in SCRATCH[preset].items() if k != "vocab_size"}
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max(block_size, 256),
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        **shape,
    )
    return GPT2LMHeadModel(config)


def load_base(name: str) -> tuple[Any, Any]:
    """Model and tokenizer from a linernotes checkpoint, a local directory, the local HF cache, or (when
    online) the hub."""
    if is_checkpoint(name):
        return load_checkpoint_base(Path(name))
    return load_pretrained(name)


def load_checkpoint_base(path: Path) -> tuple[Any, Any]:
    """A linernotes checkpoint to train on, in fp32 (an int8 one dequantized): e.g. the bot's own model,
    which a server's adapter continues from."""
    card = read_card(path)
    if card.adapter:
        raise ConfigError(
            f"--base {path}: is a LoRA adapter checkpoint, not a whole model; train on its base "
            f"({card.adapter.get('base')}), or export its run with --merge and train on that"
        )
    # On the CPU: the trainer's Accelerator moves the model to the training device itself.
    loaded = load_checkpoint(path, "fp32", "cpu")
    tok = loaded.tokenizer
    tok.padding_side = "right"  # loading sets left for batched generation; training pads its own blocks
    return loaded.model, tok


def load_pretrained(name: str) -> tuple[Any, Any]:
    """Model and tokenizer from a local Hugging Face directory, the local HF cache, or the hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    name = resolve_base(name)
    local = Path(name).is_dir()
    attempts = [True] if local or os.environ.get("HF_HUB_OFFLINE") == "1" else [True, False]
    error: Exception | None = None
    for local_only in attempts:
        try:
            tok = AutoTokenizer.from_pretrained(name, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(name, local_files_only=local_only)
            break
        except OSError as e:  # not in the cache / not on the hub / hub unreachable
            error = e
    else:
        where = "the directory" if local else "the local Hugging Face cache"
        hub = (
            ""
            if local
            else (
                " and the Hugging Face hub is unreachable (HF_HUB_OFFLINE=1)"
                if attempts == [True]
                else " and could not be fetched from the Hugging Face hub"
            )
        )
        raise ConfigError(
            f"--base {name!r}: not found in {where}{hub}. Pass a local directory holding the model "
            "(config.json, weights, tokenizer files), e.g. one saved with `huggingface-cli download gpt2 "
            "--local-dir ./gpt2` on a machine with network, or use --from-scratch tiny|small. "
            f"({type(error).__name__}: {str(error).splitlines()[0] if error else ''})"
        )
    if tok.eos_token is None:
        raise ConfigError(f"--base {name!r}: its tokenizer has no end-of-text token; linernotes needs one")
    tok.pad_token = tok.pad_token or tok.eos_token
    return model, tok


def rendering(config: TrainConfig) -> str:
    """The header rendering a run trains with: ``--rendering``; else a checkpoint base's own; else control
    codes for a model from scratch (it reads no English: the shortest header serves it best) and
    ``DEFAULT_RENDERING`` for a pretrained base."""
    if config.rendering:
        return config.rendering
    if config.from_scratch:
        return "tags"
    if is_checkpoint(config.base):
        return read_card(Path(config.base)).rendering
    return DEFAULT_RENDERING


def checkpoint_model_id(name: str) -> str | None:
    """The model id of a base that is a linernotes checkpoint (None for any other base)."""
    return read_card(Path(name)).model_id if is_checkpoint(name) else None


def build(config: TrainConfig, train_texts: list[str]) -> tuple[Any, Any]:
    """The (model, tokenizer) this run trains."""
    if config.from_scratch:
        tok = train_tokenizer(train_texts, SCRATCH[config.from_scratch]["vocab_size"])
        return scratch_model(config.from_scratch, tok, config.block_size), tok
    model, tok = load_base(config.base)
    limit = getattr(model.config, "n_positions", None) or getattr(
        model.config, "max_position_embeddings", None
    )
    if limit and config.block_size > limit:
        raise ConfigError(
            f"--block-size {config.block_size} exceeds {config.base}'s context of {limit} tokens"
        )
    return model, tok


def add_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap ``model`` with a LoRA adapter on its attention and MLP projections."""
    from peft import LoraConfig, get_peft_model

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise ConfigError(
            f"--lora: no known projection layers in {type(model).__name__} ({', '.join(LORA_TARGETS)})"
        )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        layers_to_transform=top_layers(model, config.lora_layers),
        fan_in_fan_out=getattr(model.config, "model_type", "") == "gpt2",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def top_layers(model: Any, count: int | None) -> list[int] | None:
    """Indices of ``model``'s top ``count`` transformer layers (None: every layer)."""
    if count is None:
        return None
    total = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    if not total:
        raise ConfigError(f"--lora-layers: {type(model).__name__} does not say how many layers it has")
    if count > total:
        raise ConfigError(f"--lora-layers {count}: the model has {total} layers")
    return list(range(total - count, total))
