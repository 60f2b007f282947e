"""Server adapters through an OpenAI-compatible server: attaching one registers it with the running server
(vLLM's runtime LoRA routes) unless the server already serves its name, and detaching unloads only what was
loaded so; a server that cannot load at runtime, or refuses a load, is a clear error and attaches nothing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from linernotes.common.errors import CheckpointError, TagError
from linernotes.data.format import header
from linernotes.model.backends import PromptText, Raw
from linernotes.model.card import read_card
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.model.vllm_lora import message
from tests.model.openai_server import CompletionServer
from tests.model.test_adapters import make_adapter

ONCE = {"min_chars": 1, "max_attempts": 1, "device": "cpu"}
LOAD, UNLOAD = "/v1/load_lora_adapter", "/v1/unload_lora_adapter"


@pytest.fixture(scope="module")
def paths(tiny_fp32, tmp_path_factory) -> dict[str, Path]:
    """Two adapters on the tiny base, as a server's trained adapters sit in the bot's models directory."""
    out = tmp_path_factory.mktemp("server-models")
    return {a: make_adapter(tiny_fp32, out / a, seed) for a, seed in (("a", 1), ("b", 2))}


def ids(paths: dict[str, Path]) -> dict[str, str]:
    """Each adapter's model id: the name a server serves it by."""
    return {a: read_card(p).model_id for a, p in paths.items()}


def remote(checkpoint: Path, server: CompletionServer) -> Generator:
    """A generator on ``checkpoint`` whose tokens come from ``server``."""
    return Generator.load(checkpoint, GenerateConfig(backend="openai", backend_url=server.url, **ONCE))


def written(gen: Generator, models: list[str | None], seed: int = 3) -> list[Raw]:
    """The backend's chorus continuations, one per model in ``models`` (adapter names; None: the base)."""
    prompt = PromptText(header("lyrics", {"part": "chorus"}), "", header("lyrics", {}))
    params = Sampling(seed=seed, max_new_tokens=16)
    return gen.backend.complete([prompt] * len(models), [params] * len(models), models)


def attached_nothing(gen: Generator) -> bool:
    """Whether neither the generator nor its backend holds any adapter, nor believes it loaded one."""
    return gen.adapters == [] and gen.backend.served == {} and gen.backend.lora.loaded == set()


def test_attach_registers_the_adapter_and_asks_for_it_by_its_name(tiny_fp32, paths, monkeypatch):
    local = Generator.load(tiny_fp32, GenerateConfig(**ONCE))
    local.attach("guild-a", paths["a"])
    want = written(local, ["guild-a", None])
    with CompletionServer(tiny_fp32, runtime_lora=True) as server:
        gen = remote(tiny_fp32, server)
        monkeypatch.chdir(paths["a"].parent)  # the bot names the adapter relative to its models directory
        card = gen.attach("guild-a", Path(paths["a"].name))
        # vLLM opens the path from its own working directory: it gets the absolute one.
        assert server.lora_calls == [(LOAD, {"lora_name": card.model_id, "lora_path": str(paths["a"])})]
        assert server.adapters == {card.model_id}
        got = written(gen, ["guild-a", None])
        result = gen.generate(
            [Request("lyrics", {"part": "chorus"}, sampling=Sampling(seed=5), model="guild-a")]
        )
    assert sorted(r["model"] for r in server.requests) == sorted(
        [card.model_id, card.model_id, server.base_name]
    )
    assert got == want  # the server wrote with the adapter's weights, and the base row with the base's
    assert got[0].text != got[1].text
    assert result[0].model_id == card.model_id
    assert gen.backend.lora.loaded == {card.model_id}


@pytest.mark.parametrize("runtime", [False, True], ids=["static-only", "runtime-too"])
def test_an_adapter_the_server_serves_from_start_up_needs_no_load(tiny_fp32, paths, runtime):
    name = ids(paths)["a"]
    # vllm serve BASE --enable-lora --lora-modules NAME=PATH
    with CompletionServer(tiny_fp32, {name: paths["a"]}, runtime_lora=runtime) as server:
        gen = remote(tiny_fp32, server)
        gen.attach("guild-a", paths["a"])
        assert written(gen, ["guild-a"])[0].tokens > 0
        gen.detach("guild-a")
        assert server.lora_calls == []  # neither loaded nor unloaded: it is the operator's
        assert server.adapters == {name}
    assert [r["model"] for r in server.requests] == [name]
    assert attached_nothing(gen)


def test_a_server_without_runtime_loading_is_a_clear_error(tiny_fp32, paths):
    name = ids(paths)["a"]
    with CompletionServer(tiny_fp32, runtime_lora=False) as server:
        gen = remote(tiny_fp32, server)
        with pytest.raises(CheckpointError) as caught:
            gen.attach("guild-a", paths["a"])
        assert server.lora_calls == [(LOAD, {"lora_name": name, "lora_path": str(paths["a"])})]
        with pytest.raises(TagError, match="no adapter named 'guild-a'"):
            written(gen, ["guild-a"])
    text = str(caught.value)
    assert f"adapter {name} is not served by {server.url}" in text
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in text and "--enable-lora" in text
    assert f"--lora-modules {name}={paths['a']}" in text
    assert attached_nothing(gen)


def test_a_load_the_server_refuses_attaches_nothing(tiny_fp32, paths, tmp_path):
    broken, hidden = tmp_path / "broken", tmp_path / "hidden"
    shutil.copytree(paths["b"], broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not safetensors")
    card = json.loads((broken / "card.json").read_text())  # another export: another id
    (broken / "card.json").write_text(json.dumps({**card, "model_id": "broken-lora"}))
    shutil.copytree(paths["b"], hidden)
    (hidden / "adapter_config.json").unlink()  # as vLLM finds a path only the bot's machine has
    with CompletionServer(tiny_fp32, runtime_lora=True) as server:
        gen = remote(tiny_fp32, server)
        with pytest.raises(
            CheckpointError, match=rf"{server.url} refused to load adapter .* \(500\): .+"
        ) as bad:
            gen.attach("guild-b", broken)
        assert attached_nothing(gen)
        with pytest.raises(
            CheckpointError, match=r"\(404\): Loading lora .* No adapter found .*shared volume"
        ):
            gen.attach("guild-b", hidden)
        assert attached_nothing(gen) and server.adapters == set()
        gen.attach("guild-b", paths["b"])
        before = written(gen, ["guild-b"])
        with pytest.raises(CheckpointError, match="refused to load"):
            gen.attach("guild-b", broken)  # a failed replacement: the adapter it would replace keeps serving
        assert gen.backend.served == {"guild-b": ids(paths)["b"]} and written(gen, ["guild-b"]) == before
    assert "safetensors" in str(bad.value).lower() or "header" in str(bad.value).lower()  # the server's words
    with pytest.raises(CheckpointError, match=f"could not reach {server.url}"):
        gen.attach("guild-a", paths["a"])  # the server is gone
    assert gen.adapters == ["guild-b"]


def test_detach_unloads_what_the_backend_loaded(tiny_fp32, paths):
    name = ids(paths)
    with CompletionServer(tiny_fp32, runtime_lora=True) as server:
        gen = remote(tiny_fp32, server)
        gen.attach("guild-a", paths["a"])
        gen.attach("guild-b", paths["b"])
        gen.attach("also-b", paths["b"])  # a second name for the same weights: no second load
        gen.detach("guild-a")
        assert server.lora_calls[-1] == (UNLOAD, {"lora_name": name["a"]})
        assert server.adapters == {name["b"]}
        gen.detach("guild-b")  # "also-b" still asks for those weights: they stay
        assert server.adapters == {name["b"]} and written(gen, ["also-b"])[0].tokens > 0
        gen.attach("also-b", paths["a"])  # replaced: nothing asks for b any more
        assert server.adapters == {name["a"]}
        with pytest.raises(TagError, match="no adapter named 'guild-a'"):
            written(gen, ["guild-a"])
    loads = [body["lora_name"] for route, body in server.lora_calls if route == LOAD]
    unloads = [body["lora_name"] for route, body in server.lora_calls if route == UNLOAD]
    assert loads == [name["a"], name["b"], name["a"]] and unloads == [name["a"], name["b"]]


def test_a_failed_unload_only_warns(tiny_fp32, paths, caplog):
    name = ids(paths)
    with CompletionServer(tiny_fp32, runtime_lora=True) as server:
        gen = remote(tiny_fp32, server)
        gen.attach("guild-a", paths["a"])
        gen.attach("guild-b", paths["b"])
        server.unload({"lora_name": name["a"]})  # as if the operator unloaded it (or vLLM restarted)
        with caplog.at_level(logging.WARNING, logger="linernotes.model.vllm_lora"):
            gen.detach("guild-a")
        assert (
            f"could not unload adapter {name['a']} (404): The lora adapter '{name['a']}' cannot be found"
            in (caplog.text)
        )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="linernotes.model.vllm_lora"):
        gen.detach("guild-b")  # the server is gone
    assert f"could not reach {server.url} to unload adapter {name['b']}" in caplog.text
    assert attached_nothing(gen)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            '{"error": {"message": "rank 64 > max_lora_rank 16", "type": "BadRequestError", "code": 400}}',
            "rank 64",
        ),
        (
            '{"object": "error", "message": "rank 64 > max_lora_rank 16", "code": 400}',
            "rank 64",
        ),  # vLLM < 0.10
        ('{"detail": "Not Found"}', "Not Found"),  # FastAPI, for a route the server does not have
        ("Internal Server Error", "Internal Server Error"),
        ("", "(empty answer)"),
    ],
)
def test_the_servers_message_is_read_from_each_error_shape(body, said):
    assert message(body).startswith(said)
