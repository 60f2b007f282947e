"""Every stage on a Llama-architecture base (the offline SmolLM2's family), from a GGUF file: packing
and positions, full and LoRA training, int8 export and reload, guidance, header masking, the copy guard,
the seed line, the OpenAI backend and evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from linernotes.data.format import END, HEADER_OPEN
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.training.export import export
from linernotes.training.loop import train
from linernotes.training.packing import collate, encode, pack, segments
from linernotes.training.steering import Steering
from tests.conftest import tiny_config
from tests.model.openai_server import CompletionServer


@pytest.fixture(scope="module")
def llama_run(tiny_llama, sample_data, tmp_path_factory) -> Path:
    """The tiny Llama fine-tuned from its GGUF file (``--base X.gguf``) with tag dropout."""
    run = tmp_path_factory.mktemp("llama") / "run"
    config = tiny_config(sample_data, run, from_scratch=None, base=str(tiny_llama[2]), tag_dropout=0.15)
    train(config)
    return run


def test_packed_rows_match_unpacked_examples_on_llama(tiny_llama_base, sample_data):
    """Block-diagonal masks and per-example positions give each packed example its solo logits."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes.training.dataset import load

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_base, local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(tiny_llama_base, local_files_only=True)
    examples = encode(tok, load(str(sample_data), []).val[:3])
    segs = [s for ex in examples for s in segments(ex, 256, tok.eos_token_id)]
    block = pack(segs, 256)[0]
    assert len(block) >= 2  # the test means something only if examples share the block
    batch = collate([block], 256, tok.eos_token_id)
    with torch.no_grad():
        packed = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
        ).logits[0]
        at = 0
        for ids, _ in block:
            solo = model(torch.tensor([ids])).logits[0]
            assert torch.allclose(packed[at : at + len(ids)], solo, atol=1e-4)
            at += len(ids)


def test_llama_trains_and_records_its_base(llama_run, tiny_llama):
    import json

    info = json.loads((llama_run / "run.json").read_text())
    losses = [json.loads(line)["loss"] for line in (llama_run / "metrics.jsonl").open() if '"loss"' in line]
    assert info["base"] == str(tiny_llama[2])
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it learns


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_llama_exports_loads_and_generates_cleanly(llama_run, tmp_path, precision):
    ck = export(llama_run, tmp_path / precision, precision, steering=Steering(guidance=2.0))
    card = read_card(tmp_path / precision)
    assert card.architecture["model_type"] == "llama" and card.tokenizer["eos_token"] == END
    loaded = load_checkpoint(tmp_path / precision, device="cpu")
    if precision == "int8":
        import bitsandbytes as bnb

        assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in loaded.model.modules())
    gen = Generator.load(tmp_path / precision, GenerateConfig(device="cpu", min_chars=1))
    s = Sampling(seed=3, max_new_tokens=40)
    requests = [
        Request("review", {"genre": "Metal", "score": 7.5}, sampling=s),  # guided by the card's default
        Request("lyrics", {"part": "chorus"}, seed_line="neon on the river tonight <|lyrics|>", sampling=s),
        Request("product", {"rating": 4}, sampling=s.with_seed(9)),
    ]
    results = gen.generate(requests)
    assert ck.generation["guidance"] == 2.0
    for r in results:
        assert r.ok and HEADER_OPEN not in r.text and END not in r.text
    assert results[1].text.startswith("neon on the river tonight")  # the tag syntax is gone
    assert gen.guard is not None and gen.guard.check(results[0].text).longest_run < 12


def test_llama_lora_adapter_over_a_gguf_base(tiny_llama, sample_data, tmp_path):
    """The adapter's card names the GGUF base, which loading converts (cached) and wraps again."""
    run = tmp_path / "lora"
    lora = {"lora": True, "lora_r": 4, "steps": 6, "eval_every": 3}
    train(tiny_config(sample_data, run, from_scratch=None, base=str(tiny_llama[2]), **lora))
    targets = set(read_json(run / "best" / "adapter_config.json")["target_modules"])
    assert {"q_proj", "v_proj", "gate_proj", "down_proj"} <= targets
    export(run, tmp_path / "adapter", "fp32")
    export(run, tmp_path / "merged", "fp32", merge=True)
    a, m = load_checkpoint(tmp_path / "adapter", "fp32"), load_checkpoint(tmp_path / "merged", "fp32")
    ids = a.tokenizer("<|lyrics|> part: chorus\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(a.model(ids).logits, m.model(ids).logits, atol=1e-4)


def test_llama_through_the_openai_backend(llama_run, tmp_path):
    export(llama_run, tmp_path / "ck", "fp32")
    with CompletionServer(tmp_path / "ck") as server:
        gen = Generator.load(
            tmp_path / "ck", GenerateConfig(backend="openai", backend_url=server.url, min_chars=1)
        )
        # Lyrics cut at the token limit keep whole lines only: leave the random model room for a line break.
        result = gen.generate(
            [Request("lyrics", {"part": "verse"}, sampling=Sampling(seed=1, max_new_tokens=120))]
        )
    assert result[0].ok and HEADER_OPEN not in result[0].text
    # A pretrained-style base (not from scratch) is trained on the default rendering: English, not codes.
    assert server.requests[0]["prompt"].startswith("<|lyrics|> A verse of a song.")


def test_llama_evaluates(llama_run, sample_data, tmp_path):
    from linernotes.training.eval.config import EvalConfig
    from linernotes.training.eval.run import evaluate

    export(llama_run, tmp_path / "ck", "fp32")
    out = tmp_path / "report"
    evaluate(
        EvalConfig(
            str(tmp_path / "ck"), str(sample_data), str(out), samples=2, max_values=3, max_new_tokens=24,
            tag_id_examples=8,
        )
    )  # fmt: skip
    assert "perplexity" in read_json(out / "report.json")
    assert "## Perplexity" in (out / "report.md").read_text()


def read_json(path: Path):
    import json

    return json.loads(path.read_text())
