"""Shared fixtures: every path points into a temp dir; the hub is never contacted."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, why_not

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One worker per core (`make test` runs `-n 2`): one math thread each, or the workers' thread pools fight
    # over the cores, and the tests' tiny models gain nothing from a second thread. Set before torch loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own directory with its own linernotes home and HF cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)


ENGINES = ("sqlite", "postgresql")  # the bot's two stores: tests that take ``store`` run on both


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for this test process (skipped, saying why, where none can start)."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    yield server
    server.remove()


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's bot store lives (its ``--db``): a SQLite file, or an empty schema on the test server."""
    return store_at(request, tmp_path, request.param)


def store_at(request: pytest.FixtureRequest, tmp_path: Path, engine: str) -> str:
    """A new, empty store of one engine: a SQLite file's path or a PostgreSQL URL."""
    if engine == "sqlite":
        return str(tmp_path / "bot.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_schema(f"t_{uuid.uuid4().hex[:12]}")


def tiny_config(data: Path, out: Path, **kw):
    """A tiny from-scratch run on the bundled corpus (the pipeline's ``tiny`` recipe): seconds on a CPU."""
    from linernotes.training.pipeline import train_config

    return train_config("tiny", data, out, **kw)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample corpus, prepared once per session."""
    from linernotes.training.pipeline import prepare_once

    out = tmp_path_factory.mktemp("tiny") / "prepared"
    prepare_once([SAMPLE], out, {}, lambda _: None)
    return out


@pytest.fixture(scope="session")
def tiny_run(sample_data: Path) -> Path:
    """A tiny model trained once per session on the sample corpus (beside its prepared data)."""
    from linernotes.training.pipeline import build

    return build([SAMPLE], sample_data.parent, "tiny", precision=None, sample_every=40).run


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported as the product ships it: int8."""
    from linernotes.training.export import export

    out = tmp_path_factory.mktemp("ckpt") / "tiny-int8"
    export(tiny_run, out, "int8")
    return out


@pytest.fixture(scope="session")
def tiny_fp32(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny run exported in fp32 (fast to load; for generation tests)."""
    from linernotes.training.export import export

    out = tmp_path_factory.mktemp("ckpt") / "tiny-fp32"
    export(tiny_run, out, "fp32")
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A random tiny Llama model and its tokenizer (trained on the bundled corpus), written as GGUF.

    Returns (model, tokenizer, gguf path)."""
    from tests.tinygguf import tiny_llama as build
    from tests.tinygguf import write_gguf

    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE.rglob("*")) if p.suffix in {".csv", ".txt"}]
    model, tok = build(texts)
    gguf = write_gguf(model, tok, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")
    return model, tok, gguf


@pytest.fixture(scope="session")
def tiny_llama_base(tiny_llama: tuple, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GGUF converted into a Hugging Face directory by the product's own path (``--base X.gguf``)."""
    from linernotes.model.bases import convert_once

    out = tmp_path_factory.mktemp("bases") / "tiny-llama"
    return convert_once(tiny_llama[2], out, lambda _: None)
