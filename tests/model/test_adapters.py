"""LoRA adapters beside their base: one batch mixes rows of several adapters and of the base, and each row
is written exactly as it would be alone, validated by its adapter's card, checked by its adapter's copy
guard and recorded under its adapter's id; on GPT-2 (fused Conv1D) and Llama, fp32 and int8."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from linernotes.common.errors import CheckpointError, GenerationError, TagError
from linernotes.data.format import header
from linernotes.model.backends import LocalBackend, PromptText, Raw
from linernotes.model.card import Card, read_card
from linernotes.model.checkpoint import load_checkpoint, save_checkpoint
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.copyguard import CopyGuard, build_index, words
from linernotes.model.decode import Prompt, next_token_logprobs
from linernotes.model.generator import Generator, Request, Result
from linernotes.model.lora import NO_ADAPTER, LoraBank, LoraLinear, Routes, read_lora
from tests.model.openai_server import CompletionServer

# One attempt per request, so a text is one decode and runs can be compared exactly.
ONCE = {"min_chars": 1, "max_attempts": 1, "device": "cpu"}
TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
# What one server's upload held: lyrics only, with a part and an artist the Llama base never saw.
ADAPTER_TAGS = {
    "lyrics": {"examples": 4, "part": {"hook": 2, "chorus": 2}, "artist": {"Guild House Band": 4}}
}
LLAMA_TAGS = {
    "lyrics": {"examples": 10, "part": {"verse": 5, "chorus": 5}, "artist": {"Iron Chapel": 10}},
    "review": {"examples": 10, "genre": {"Metal": 10}, "score_range": [0.0, 10.0]},
}


def export_llama(base: Path, out: Path, precision: str) -> Path:
    """The tiny Llama HF directory as a linernotes checkpoint, with a hand-made card."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(base, local_files_only=True)
    card = Card(
        model_id=f"tiny-llama-{precision}",
        base_model=str(base),
        precision=precision,
        architecture={"model_type": "llama"},
        tokenizer={"class": type(tok).__name__, "vocab_size": len(tok), "eos_token": tok.eos_token},
        tags=LLAMA_TAGS,
    )
    return save_checkpoint(out, model, tok, card, precision)


def make_adapter(
    base: Path,
    out: Path,
    seed: int,
    texts: Sequence[str] = (),
    rank: int = 4,
    targets: int | None = None,
    **settings: Any,
) -> Path:
    """A LoRA adapter checkpoint on ``base`` with random (nonzero) weights, as training would export it;
    on the first ``targets`` of the architecture's projection kinds (default: all); ``settings`` are more
    ``LoraConfig`` fields (lora_alpha defaults to twice the rank)."""
    from peft import LoraConfig, get_peft_model

    loaded = load_checkpoint(base, "fp32", "cpu")
    kind = loaded.model.config.model_type
    torch.manual_seed(seed)
    # GPT-2's fused layers are Conv1D (weights stored transposed), an int8 checkpoint read as fp32's too.
    fused = any(type(m).__name__ == "Conv1D" for m in loaded.model.modules())
    config = LoraConfig(
        **{
            "r": rank,
            "lora_alpha": 2 * rank,
            "init_lora_weights": False,
            "target_modules": TARGETS[kind][:targets],
            "fan_in_fan_out": fused,
            **settings,
        }
    )
    model = get_peft_model(loaded.model, config)
    with torch.no_grad():  # random A and B at full scale would make noise; a tenth changes texts, not fluency
        for param_name, param in model.named_parameters():
            if "lora_B" in param_name:
                param.mul_(0.1)
    card = Card(
        model_id=f"{out.name}-lora",
        base_model=loaded.card.base_model,
        precision="fp32",
        architecture=loaded.card.architecture,
        tokenizer=loaded.card.tokenizer,
        tags=ADAPTER_TAGS,
        adapter={
            "type": "lora",
            "base": str(base),
            "base_model_id": loaded.card.model_id,
            "r": rank,
            "alpha": config.lora_alpha,
        },
    )
    return save_checkpoint(
        out, model, loaded.tokenizer, card, "fp32", extras=CopyGuard(build_index(texts)).save
    )


@pytest.fixture(scope="module")
def adapters(checkpoints, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Two adapters ("a", "b") per base checkpoint."""
    out = tmp_path_factory.mktemp("adapters")
    return {
        name: {a: make_adapter(base, out / f"{name}-{a}", seed) for a, seed in (("a", 1), ("b", 2))}
        for name, base in checkpoints.items()
    }


def attached(checkpoint: Path, paths: dict[str, Path], **config) -> Generator:
    """A generator on ``checkpoint`` with every adapter in ``paths`` attached under its key."""
    gen = Generator.load(checkpoint, GenerateConfig(**{**ONCE, **config}))
    for name, path in paths.items():
        gen.attach(name, path)
    return gen


def chorus(model: str | None, seed: int, limit: int = 24, guidance: float = 1.0) -> Request:
    """A chorus request for ``model`` (an adapter's name; None: the base)."""
    return Request(
        "lyrics",
        {"part": "chorus"},
        sampling=Sampling(seed=seed, max_new_tokens=limit, guidance=guidance),
        model=model,
    )


def outputs(results: list[Result]) -> list[tuple[str, int, str]]:
    """What a generator wrote, comparable across generators."""
    return [(r.text, r.tokens, r.stop) for r in results]


def raw_outputs(gen: Generator, requests: list[Request]) -> list[Raw]:
    """The backend's continuations of ``requests`` in one batch, before post-processing (which may empty
    a random model's text)."""
    prompts = [PromptText(header(r.kind, r.tags), "", header(r.kind, {})) for r in requests]
    models = [r.model for r in requests]
    return gen.backend.complete(prompts, [r.sampling for r in requests], models if any(models) else None)


def mixed_requests() -> list[Request]:
    """Adapter a, base, adapter b with the same tags and seed; then more rows leaving at other steps."""
    rows = [chorus("a", 5), chorus(None, 5), chorus("b", 5)]
    return rows + [chorus("b", 6, limit=12), chorus(None, 7, limit=16), chorus("a", 8, limit=7)]


@pytest.mark.parametrize("name", ["gpt2-fp32", "gpt2-int8", "llama-fp32", "llama-int8"])
def test_mixed_batch_rows_match_their_solo_runs(checkpoints, adapters, name):
    gen = Generator.load(checkpoints[name], GenerateConfig(**ONCE))
    requests = mixed_requests()
    base_rows = [r for r in requests if r.model is None]
    before = raw_outputs(gen, base_rows)
    for a, path in adapters[name].items():
        gen.attach(a, path)
    assert gen.adapters == ["a", "b"]
    mixed = raw_outputs(gen, requests)
    assert mixed == [raw_outputs(gen, [r])[0] for r in requests]
    # Base rows write what they wrote before any adapter existed, beside adapter rows or not.
    assert [m for m, r in zip(mixed, requests, strict=True) if r.model is None] == before
    assert raw_outputs(gen, base_rows) == before
    # Same tags and seed, three models: three different texts.
    assert len({mixed[0].text, mixed[1].text, mixed[2].text}) == 3
    assert len({m.tokens for m in mixed}) > 1  # rows left the batch at different steps
    # The generator decodes the same batch and records each text under its own model's id.
    results = gen.generate(requests)
    assert [r.tokens for r in results] == [m.tokens for m in mixed]
    ids = {None: gen.model_id, **{a: read_card(path).model_id for a, path in adapters[name].items()}}
    assert [r.model_id for r in results] == [ids[r.model] for r in requests]
    assert [r.to_dict()["adapter"] for r in results] == [r.model for r in requests]


def test_guided_rows_go_through_their_adapter(checkpoints, adapters):
    gen = attached(checkpoints["gpt2-fp32"], adapters["gpt2-fp32"])
    requests = [replace(r, sampling=replace(r.sampling, guidance=2.0)) for r in mixed_requests()]
    requests.append(chorus("a", 5))  # unguided, beside guided rows of the same adapter
    mixed = raw_outputs(gen, requests)
    assert mixed == [raw_outputs(gen, [r])[0] for r in requests]
    assert len({mixed[0].text, mixed[1].text, mixed[2].text}) == 3
    assert mixed[0].text != mixed[-1].text  # guidance changed adapter a's text


def routed_columns(bank: LoraBank, columns: int) -> list[str | None]:
    """The adapter each column of the running forward goes through, read back from the bank's plan."""
    plan = bank.plan
    if plan is None:
        return [None] * columns
    width = plan.rows.numel() // plan.groups
    slots = list(range(len(bank))) if plan.slots is None else plan.slots.tolist()
    keep = [1.0] * plan.rows.numel() if plan.keep is None else plan.keep.tolist()
    out: list[str | None] = [None] * columns
    for n, (row, kept) in enumerate(zip(plan.rows.tolist(), keep, strict=True)):
        if kept:
            assert out[row] is None, "a column routed twice"
            out[row] = bank.names[slots[n // width]]
    return out


def test_every_forward_routes_each_column_through_its_adapter(checkpoints, adapters):
    loaded = load_checkpoint(checkpoints["gpt2-fp32"], "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    for a, path in adapters["gpt2-fp32"].items():
        backend.attach(a, path, read_card(path))
    calls: list[list[str | None]] = []

    def record(_module, args, kwargs):
        calls.append(routed_columns(backend.lora, kwargs["input_ids"].shape[0]))

    prompts = [PromptText("<|lyrics|> part: chorus\n", "", "<|lyrics|>\n")] * 4
    params = [Sampling(seed=n, max_new_tokens=6 + 4 * n, guidance=2.0 if n % 2 else 1.0) for n in range(4)]
    handle = backend.model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        backend.complete(prompts, params, ["a", None, "b", "a"])
        first, steps = calls[0], len(calls)
        backend.complete(prompts, params)  # no adapter asked for: every row on the model's own weights
    finally:
        handle.remove()
    # Rows in order, then the unconditioned partners of the guided rows (1 and 3), with their row's adapter.
    assert first == ["a", None, "b", "a", None, "a"]
    assert {n for names in calls[:steps] for n in names} == {"a", "b", None}
    assert all(names == [None] * len(names) for names in calls[steps:]) and len(calls) > steps
    assert backend.lora.plan is None  # outside a batch's forwards nothing is routed
    # Detaching the last adapter gives back the plain model: its own layers, as before any attach.
    backend.detach("a")
    backend.detach("b")
    assert type(backend.model) is type(loaded.model) and not backend.lora
    assert not any(isinstance(m, LoraLinear) for m in backend.model.modules())


def test_next_token_logprobs_through_an_adapter(checkpoints, adapters):
    loaded = load_checkpoint(checkpoints["gpt2-fp32"], "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    ids = loaded.tokenizer("<|lyrics|> part: chorus\n", add_special_tokens=False)["input_ids"]
    bare = loaded.tokenizer("<|lyrics|>\n", add_special_tokens=False)["input_ids"]
    prompt = Prompt(ids, len(ids), bare)
    plain = next_token_logprobs(backend.model, prompt, 2.0, backend.vocab, backend.pad)
    backend.attach("a", adapters["gpt2-fp32"]["a"], read_card(adapters["gpt2-fp32"]["a"]))
    as_base = Routes(backend.lora, (NO_ADAPTER,))
    through = Routes(backend.lora, backend.lora.slots(["a"]))
    as_base_lp = next_token_logprobs(backend.model, prompt, 2.0, backend.vocab, backend.pad, as_base)
    through_lp = next_token_logprobs(backend.model, prompt, 2.0, backend.vocab, backend.pad, through)
    assert torch.allclose(as_base_lp, plain, atol=1e-6) and not torch.allclose(through_lp, plain, atol=1e-3)


def test_tags_are_checked_against_the_adapters_card(checkpoints, adapters):
    gen = attached(checkpoints["llama-fp32"], {"a": adapters["llama-fp32"]["a"]})
    hook = Request("lyrics", {"part": "HOOK", "artist": "guild house band"}, model="a")
    assert gen.prepare(hook).tags == {"part": "hook", "artist": "Guild House Band"}  # the adapter's spelling
    with pytest.raises(TagError, match="part 'hook' is not one this model knows; it knows: verse, chorus"):
        gen.prepare(replace(hook, tags={"part": "hook"}, model=None))
    with pytest.raises(TagError, match="artist 'Guild House Band' is not one this model knows"):
        gen.prepare(replace(hook, tags={"part": "chorus", "artist": "Guild House Band"}, model=None))
    with pytest.raises(TagError, match="this model was not trained on reviews; it knows: lyrics"):
        gen.prepare(Request("review", {"genre": "Metal", "score": 5}, model="a"))
    with pytest.raises(TagError, match=r"no adapter named 'zz' is attached to this model \(attached: a\)"):
        gen.generate([chorus("zz", 1)])


def test_each_adapters_copy_guard_checks_its_own_text(checkpoints, adapters, tmp_path):
    gen = attached(checkpoints["gpt2-fp32"], {"a": adapters["gpt2-fp32"]["a"]})
    request = chorus("a", 11, limit=60)
    (first,) = gen.generate([request])
    assert first.ok and len(words(first.text)) >= 8
    # The same weights, uploaded with data holding exactly that text.
    copied = tmp_path / "copied"
    shutil.copytree(adapters["gpt2-fp32"]["a"], copied)
    CopyGuard(build_index([first.text])).save(copied)
    gen.attach("c", copied)
    c, a, base = gen.generate([replace(request, model="c"), request, replace(request, model=None)])
    assert not c.ok and c.text == "" and "reproduced training text" in c.error
    assert (a.ok, a.text) == (True, first.text)  # adapter a's own data never held it
    assert "reproduced" not in (base.error or "")  # nor did the base's
    gen.attach("a", copied)  # attaching a name again replaces the adapter, its guard included
    (again,) = gen.generate([request])
    assert not again.ok and "reproduced training text" in again.error
    # The old weights went: the stacks hold two adapters' worth.
    sizes = [read_lora(p, gen.backend.model).nbytes for p in (copied, copied)]
    assert gen.adapters == ["a", "c"] and len(gen.backend.lora) == 2 and gen.backend.lora.nbytes == sum(sizes)


def test_adapter_text_is_also_checked_against_the_bases_data(checkpoints, adapters):
    gen = attached(checkpoints["gpt2-fp32"], {"a": adapters["gpt2-fp32"]["a"]})
    request = chorus("a", 11, limit=60)
    (first,) = gen.generate([request])
    assert first.ok
    # An adapter starts from the base, which saw the base's corpus: text from it is refused too.
    gen.guard = CopyGuard(build_index([first.text]))
    (again,) = gen.generate([request])
    assert not again.ok and "reproduced training text" in again.error


def test_only_adapters_of_this_base_attach(checkpoints, adapters):
    gen = Generator.load(checkpoints["gpt2-int8"], GenerateConfig(**ONCE))
    foreign = adapters["gpt2-fp32"]["a"]
    with pytest.raises(CheckpointError) as e:
        gen.attach("a", foreign)
    want = (str(foreign), read_card(foreign).adapter["base_model_id"], gen.model_id)
    assert all(s in str(e.value) for s in want) and want[1] != want[2]
    with pytest.raises(CheckpointError, match="is not a LoRA adapter checkpoint"):
        gen.attach("a", checkpoints["gpt2-int8"])
    assert gen.adapters == []
    # A generator serving an unmerged adapter checkpoint takes no further adapters.
    unmerged = Generator.load(foreign, GenerateConfig(**ONCE))
    with pytest.raises(CheckpointError, match="itself an unmerged LoRA adapter checkpoint"):
        unmerged.attach("b", adapters["gpt2-fp32"]["b"])


def test_detached_adapter_is_refused(checkpoints, adapters):
    gen = attached(checkpoints["gpt2-fp32"], adapters["gpt2-fp32"])
    gen.detach("a")
    assert gen.adapters == ["b"]
    with pytest.raises(TagError, match=r"no adapter named 'a' is attached to this model \(attached: b\)"):
        gen.generate([chorus(None, 1), chorus("a", 1)])
    assert gen.generate([chorus("b", 1)])[0].model_id == read_card(adapters["gpt2-fp32"]["b"]).model_id
    gen.detach("b")
    with pytest.raises(TagError, match=r"no adapter named 'b' is attached to this model \(attached: none\)"):
        gen.detach("b")
    assert gen.generate([chorus(None, 1)])[0].model_id == gen.model_id
    assert not gen.backend.lora and not any(isinstance(m, LoraLinear) for m in gen.backend.model.modules())


def test_openai_backend_asks_for_each_adapter_by_its_served_name(checkpoints, adapters):
    base, paths = checkpoints["gpt2-fp32"], adapters["gpt2-fp32"]
    served = {read_card(p).model_id: p for p in paths.values()}  # vllm serve --lora-modules NAME=PATH ...
    local = attached(base, paths)
    requests = mixed_requests()
    with CompletionServer(base, served) as server:
        remote = attached(base, paths, backend="openai", backend_url=server.url)
        results = remote.generate(requests)
        asked = sorted((r["seed"], r["model"]) for r in server.requests)
        server.adapters.discard(read_card(paths["b"]).model_id)  # as if vLLM had unloaded b
        with pytest.raises(GenerationError, match="404"):
            remote.generate([chorus("b", 1)])
    assert asked == sorted((r.request.sampling.seed, r.model_id) for r in results)
    assert [r.model_id for r in results] == [r.model_id for r in local.generate(requests)]
    assert outputs(results) == outputs(local.generate(requests))


def test_a_broken_adapter_leaves_the_model_as_it_was(checkpoints, adapters, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(adapters["gpt2-fp32"]["b"], broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not safetensors")
    gen = Generator.load(checkpoints["gpt2-fp32"], GenerateConfig(**ONCE))
    before = raw_outputs(gen, [chorus(None, 3)])
    with pytest.raises(CheckpointError, match="broken: adapter weights could not be loaded"):
        gen.attach("b", broken)
    assert gen.adapters == [] and not any(isinstance(m, LoraLinear) for m in gen.backend.model.modules())
    assert raw_outputs(gen, [chorus(None, 3)]) == before
    gen.attach("a", adapters["gpt2-fp32"]["a"])
    written = raw_outputs(gen, [chorus("a", 3), chorus(None, 3)])
    with pytest.raises(CheckpointError, match="adapter weights could not be loaded"):
        gen.attach("a", broken)  # a failed replacement: the adapter it would replace keeps serving
    assert gen.adapters == ["a"] and gen.backend.lora.names == ["a"]
    assert raw_outputs(gen, [chorus("a", 3), chorus(None, 3)]) == written


def peft_logits(checkpoint: Path, paths: dict[str, Path], ids: torch.Tensor, rows: list[str | None]):
    """Logits (rows, T, V) from peft's own mixed-batch inference: the reference for the stacked layers."""
    from peft import PeftModel

    model = load_checkpoint(checkpoint, "fp32" if "fp32" in checkpoint.name else "int8", "cpu").model
    (first, path), *rest = paths.items()
    model = PeftModel.from_pretrained(model, str(path), adapter_name=first)
    for name, other in rest:
        model.load_adapter(str(other), adapter_name=name)
    with torch.inference_mode():
        return model.eval()(input_ids=ids, adapter_names=[r or "__base__" for r in rows]).logits


@pytest.mark.parametrize("name", ["gpt2-fp32", "gpt2-int8", "llama-fp32", "llama-int8"])
def test_stacked_adapters_compute_what_peft_does(checkpoints, adapters, name, tmp_path):
    # A third adapter of twice the rank on the first projection kind only: stacks pad ranks and layers.
    paths = {**adapters[name], "c": make_adapter(checkpoints[name], tmp_path / "c", 3, rank=8, targets=1)}
    loaded = load_checkpoint(checkpoints[name], "fp32" if "fp32" in name else "int8", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    for a, path in paths.items():
        backend.attach(a, path, read_card(path))
    rows = ["a", None, "c", "b", "a", "c", None]
    ids = torch.randint(0, len(loaded.tokenizer), (len(rows), 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(), backend.lora.routed(backend.lora.slots(rows)):
        ours = backend.model(input_ids=ids).logits
    reference = peft_logits(checkpoints[name], paths, ids, rows)
    assert torch.allclose(ours, reference, atol=1e-4, rtol=1e-4)
    # Each row differs from the plain model's exactly when it has an adapter.
    with torch.inference_mode():
        plain = backend.model(input_ids=ids).logits
    assert [not torch.allclose(o, p, atol=1e-4) for o, p in zip(ours, plain, strict=True)] == [
        r is not None for r in rows
    ]
    # Without c, the stacks shrink back to rank 4: exactly a's and b's weights remain.
    backend.detach("c")
    sizes = [read_lora(adapters[name][a], backend.model).nbytes for a in ("a", "b")]
    assert backend.lora.nbytes == sum(sizes)


def test_a_lora_variant_is_refused_before_the_model_changes(checkpoints, adapters, tmp_path):
    import json

    dora = tmp_path / "dora"
    shutil.copytree(adapters["llama-fp32"]["a"], dora)
    config = json.loads((dora / "adapter_config.json").read_text())
    (dora / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    gen = Generator.load(checkpoints["llama-fp32"], GenerateConfig(**ONCE))
    with pytest.raises(CheckpointError, match="dora: the adapter uses DoRA, which linernotes does not serve"):
        gen.attach("d", dora)
    assert gen.adapters == [] and not any(isinstance(m, LoraLinear) for m in gen.backend.model.modules())


# --- the one adapter check: `linernotes models add`, the trainer's output and the bot's start-up ---------


def _edit_config(path: Path, **changes: object) -> None:
    import json

    config = json.loads((path / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**config, **changes}))


def _edit_tensors(path: Path, edit) -> None:
    """Rewrite the adapter's weights as ``edit`` changes them (a dict of tensors, by key)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(path / "adapter_model.safetensors")
    save_file(edit(dict(tensors)), path / "adapter_model.safetensors")


def _first_pair(tensors: dict) -> tuple[str, str]:
    """The key prefix and module path of the first adapted layer."""
    key = sorted(k for k in tensors if k.endswith(".lora_A.weight"))[0]
    prefix = key[: -len(".lora_A.weight")]
    return prefix, prefix[len("base_model.model.") :]


def _moved(tensors: dict, to: str) -> dict:
    """The first layer's pair of weights moved onto the module ``to``."""
    prefix, _ = _first_pair(tensors)
    for end in (".lora_A.weight", ".lora_B.weight"):
        tensors[f"base_model.model.{to}{end}"] = tensors.pop(prefix + end)
    return tensors


def _pickled(path: Path) -> None:
    from safetensors.torch import load_file

    torch.save(load_file(path / "adapter_model.safetensors"), path / "adapter_model.bin")
    (path / "adapter_model.safetensors").unlink()


def _own_id(path: Path, model_id: str) -> None:
    import json

    card = json.loads((path / "card.json").read_text())
    (path / "card.json").write_text(json.dumps({**card, "model_id": model_id}))


def _widened(tensors: dict) -> dict:
    prefix, _ = _first_pair(tensors)
    a = tensors[prefix + ".lora_A.weight"]
    tensors[prefix + ".lora_A.weight"] = torch.cat([a, a[:, :1]], dim=1)  # one input feature too many
    return tensors


# case -> (what breaks the adapter, what the check says); the reason never names where the adapter lies.
BROKEN = {
    "r zero": (lambda p, base: _edit_config(p, r=0), '"r" is 0, not a whole number from 1 to 256'),
    "r a word": (lambda p, base: _edit_config(p, r="eight"), '"r" is "eight", not a whole number'),
    "r huge": (lambda p, base: _edit_config(p, r=100000), '"r" is 100000, not a whole number'),
    "config a list": (
        lambda p, base: (p / "adapter_config.json").write_text("[]"),
        "adapter_config.json: not a JSON object",
    ),
    "alpha text": (lambda p, base: _edit_config(p, lora_alpha="16"), '"lora_alpha" is "16", not a positive'),
    "targets": (lambda p, base: _edit_config(p, target_modules=7), '"target_modules" is 7, not a list'),
    "dora": (lambda p, base: _edit_config(p, use_dora=True), "the adapter uses DoRA"),
    "pickle only": (
        lambda p, base: _pickled(p),
        "no adapter_model.safetensors (only adapter_model.bin, a pickle, which linernotes never loads)",
    ),
    "wrong shape": (lambda p, base: _edit_tensors(p, _widened), "do not fit the layer"),
    "config rank": (lambda p, base: _edit_config(p, r=2), "do not fit the layer"),
    "unknown module": (
        lambda p, base: _edit_tensors(p, lambda t: _moved(t, "transformer.h.99.attn.c_attn")),
        'the adapter targets "transformer.h.99.attn.c_attn", which the model does not have',
    ),
    "not linear": (
        lambda p, base: _edit_tensors(p, lambda t: _moved(t, "transformer.wte")),
        'the adapter targets "transformer.wte", which is not a linear layer',
    ),
    "a name of any length": (
        lambda p, base: _edit_tensors(p, lambda t: _moved(t, "x" * 5000)),
        'the adapter targets "xxxxxxxxxx',
    ),
    "integer weights": (
        lambda p, base: _edit_tensors(p, lambda t: {k: v.to(torch.int64) for k, v in t.items()}),
        'holds "I64", not floating-point numbers',
    ),
    "base's id": (
        lambda p, base: _own_id(p, read_card(base).model_id),
        "is the id of the model it adapts; an adapter needs an id of its own",
    ),
    "base's base id": (
        lambda p, base: _own_id(p, read_card(base).base_model),
        "is the id of the model it adapts",
    ),
    "copy guard": (
        lambda p, base: (p / "copyguard.npy").write_bytes(b"not an index"),
        "copyguard.npy could not be read",
    ),
}
CARD_CASES = {"base's id", "base's base id", "copy guard"}  # checked beside the LoRA files, not in them


def spoil(adapter: Path, base: Path, case: str) -> None:
    """Break the adapter checkpoint ``adapter`` (trained on ``base``) in place, as ``BROKEN[case]`` says."""
    BROKEN[case][0](adapter, base)


def break_adapter(adapter: Path, base: Path, to: Path, case: str) -> Path:
    """A copy of ``adapter`` (trained on ``base``) at ``to``, broken as ``BROKEN[case]`` says."""
    shutil.copytree(adapter, to)
    spoil(to, base, case)
    return to


@pytest.fixture(scope="module")
def good_adapter(tiny_fp32, tmp_path_factory) -> Path:
    """One adapter on the tiny GPT-2 (fp32), rank 4 on every projection."""
    return make_adapter(tiny_fp32, tmp_path_factory.mktemp("good") / "good", 1, texts=["la " * 20])


@pytest.fixture(scope="module")
def live_fp32(tiny_fp32):
    """The tiny GPT-2 loaded as the bot serves it (fp32)."""
    return load_checkpoint(tiny_fp32, "fp32", "cpu").model


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_adapter_check_refuses_what_cannot_be_served(case, good_adapter, tiny_fp32, live_fp32, tmp_path):
    from linernotes.common.errors import AdapterError
    from linernotes.model.adapters import check_adapter

    broken = break_adapter(good_adapter, tiny_fp32, tmp_path / "broken", case)
    expected = BROKEN[case][1]
    with pytest.raises(AdapterError) as e:
        check_adapter(broken, read_card(tiny_fp32), tiny_fp32)
    assert expected in e.value.reason and str(e.value) == f"{broken}: {e.value.reason}"
    assert str(tmp_path) not in e.value.reason and len(e.value.reason) < 300  # /model list shows it
    if case not in CARD_CASES:  # the loader runs the same check against the model it loads into
        with pytest.raises(AdapterError) as loading:
            read_lora(broken, live_fp32)
        assert loading.value.reason == e.value.reason
        assert not any(isinstance(m, LoraLinear) for m in live_fp32.modules())


def test_the_check_builds_the_base_from_its_config_alone(
    good_adapter, tiny_fp32, tiny_checkpoint, live_fp32, tmp_path
):
    from linernotes.model.adapters import check_adapter
    from linernotes.model.lora_check import base_layers, layer_dims

    # No weights needed: a folder holding only the base's config.json gives the loaded model's layers.
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    shutil.copy(tiny_fp32 / "config.json", config_only)
    layers = base_layers(config_only)
    assert layers == layer_dims(live_fp32) and layers["transformer.h.0.attn.c_attn"] is not None
    # The int8 export (bitsandbytes' layers once loaded) has the same layers by name and size.
    int8 = layer_dims(load_checkpoint(tiny_checkpoint, "int8", "cpu").model)
    assert base_layers(tiny_checkpoint) == int8 == layers
    assert check_adapter(good_adapter, read_card(tiny_fp32), tiny_fp32) == read_card(good_adapter)


def test_an_adapter_trained_on_another_rendering_is_refused(checkpoints, adapters, tmp_path):
    import json

    shutil.copytree(adapters["gpt2-fp32"]["a"], tmp_path / "a")
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    (tmp_path / "a" / "card.json").write_text(json.dumps({**card, "rendering": "prose"}))
    gen = Generator.load(checkpoints["gpt2-fp32"], GenerateConfig(**ONCE))
    with pytest.raises(CheckpointError, match="trained on 'prose' headers, but .* is prompted with 'tags'"):
        gen.attach("a", tmp_path / "a")
    assert gen.adapters == []
