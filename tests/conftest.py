"""Shared fixtures: every path points into a temp dir; the hub is never contacted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
SAMPLE = REPO / "data" / "sample"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory with its own linernotes home and HF cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)


def shared(name: str) -> Path:
    """A corpus under ../shared/corpora, or skip when this checkout has none beside it."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not present beside this checkout")
    return path


def tiny_config(data: Path, out: Path, **kw):
    """A tiny from-scratch run on the bundled corpus: seconds on a laptop CPU."""
    from training.config import TrainConfig

    settings = {
        "from_scratch": "tiny",
        "steps": 40,
        "batch_size": 8,
        "block_size": 256,
        "eval_every": 20,
        "save_every": 20,
        "lr": 2e-3,
        "warmup_steps": 5,
        "progress": False,
    }
    settings.update(kw)
    return TrainConfig(data=str(data), out=str(out), **settings)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample corpus, prepared once per session."""
    from data.config import DataConfig
    from data.prepare import prepare

    out = tmp_path_factory.mktemp("sample") / "prepared"
    prepare(DataConfig(sources=[str(SAMPLE)], out=str(out)))
    return out


@pytest.fixture(scope="session")
def tiny_run(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained once per session on the sample corpus."""
    from training.loop import train

    run = tmp_path_factory.mktemp("runs") / "tiny"
    train(tiny_config(sample_data, run, sample_every=40))
    return run


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported as the product ships it: int8."""
    from training.export import export

    out = tmp_path_factory.mktemp("ckpt") / "tiny-int8"
    export(tiny_run, out, "int8")
    return out


@pytest.fixture(scope="session")
def tiny_fp32(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported in fp32 (fast to load; for generation tests)."""
    from training.export import export

    out = tmp_path_factory.mktemp("ckpt") / "tiny-fp32"
    export(tiny_run, out, "fp32")
    return out
