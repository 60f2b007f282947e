"""Fixtures the model tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.test_adapters import export_llama


@pytest.fixture(scope="session")
def checkpoints(tiny_fp32, tiny_checkpoint, tiny_llama_base, tmp_path_factory) -> dict[str, Path]:
    """Base checkpoints by name: GPT-2 and Llama, each fp32 and int8 (built once per session)."""
    out = tmp_path_factory.mktemp("bases")
    return {
        "gpt2-fp32": tiny_fp32,
        "gpt2-int8": tiny_checkpoint,
        "llama-fp32": export_llama(tiny_llama_base, out / "llama-fp32", "fp32"),
        "llama-int8": export_llama(tiny_llama_base, out / "llama-int8", "int8"),
    }
