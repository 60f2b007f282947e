"""A server's LoRA adapter over a linernotes checkpoint: trained as the bot's child job, exported unmerged,
loaded over its base, refused over another one, reported as events, and stoppable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from linernotes.cli.main import main
from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.training.export import export
from linernotes.training.loop import train
from linernotes.training.pipeline import RECIPES, train_config
from linernotes.training.server import exit_with, sigterm_exits, train_adapter, upper_layers
from linernotes.training.setup import add_lora, load_base
from tests.conftest import REPO

PROMPT = "<|lyrics|> part: chorus\n"


@pytest.fixture(scope="module")
def job(sample_data: Path, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One adapter job on the int8 tiny checkpoint, as the bot runs it: its work directory and events."""
    work = tmp_path_factory.mktemp("job")
    events: list[dict[str, Any]] = []
    done = train_adapter(sample_data, tiny_checkpoint, work, 4, events.append)
    return {"work": work, "events": events, "done": done}


def logits(checkpoint: Path) -> torch.Tensor:
    loaded = load_checkpoint(checkpoint, "fp32", "cpu")
    ids = loaded.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return loaded.model(ids).logits


def test_job_reports_start_steps_and_done_in_order(job, tiny_checkpoint):
    events, done = job["events"], job["done"]
    assert [e["event"] for e in events] == ["start", "step", "step", "step", "step", "done"]
    start = events[0]
    assert start["total"] == 4 and start["examples"] > 300 and start["val_examples"] > 0
    assert [e["step"] for e in events[1:-1]] == [1, 2, 3, 4]
    assert all(e["total"] == 4 and e["loss"] > 0 and e["elapsed"] >= 0 for e in events[1:-1])
    assert events[-2]["eta"] == 0.0
    assert events[-1] == done and done["steps"] == 4 and done["seconds"] > 0
    assert done["tokens"] > 0 and done["cpu_s"] > 0 and done["gpu_s"] == 0.0  # its cost, for the operator
    assert Path(done["checkpoint"]) == job["work"] / "checkpoint"
    assert done["base_val_loss"] > 0 and done["val_loss"] > 0
    json.dumps(events, allow_nan=False)  # every event is plain JSON


def test_adapter_card_names_its_base_checkpoint_and_the_loss_against_it(job, tiny_checkpoint):
    done, run = job["done"], job["work"] / "run"
    card = read_card(Path(done["checkpoint"]))
    assert card.model_id == done["model_id"] and card.precision == "fp32"
    assert card.adapter == {
        "type": "lora",
        "base": str(tiny_checkpoint.resolve()),
        "base_model_id": read_card(tiny_checkpoint).model_id,
        "r": RECIPES["server"]["lora_r"],
        "alpha": RECIPES["server"]["lora_alpha"],
    }
    summary = json.loads((run / "run.json").read_text())
    assert card.metrics["start_val_loss"] == summary["start_val_loss"]
    assert round(summary["start_val_loss"], 4) == done["base_val_loss"]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == 0 and "val_loss" in metrics[0]  # the loss curve starts at the base
    # The copy guard is built from the adapter's own training data.
    assert card.data["sources"] == [str(job["work"] / "prepared" / "train.jsonl")]
    assert (Path(done["checkpoint"]) / "copyguard.npy").is_file()
    assert not (Path(done["checkpoint"]) / "model.safetensors").exists()  # the adapter only


def test_adapter_loads_over_its_base_and_changes_the_outputs(job, tiny_checkpoint, tmp_path):
    checkpoint = Path(job["done"]["checkpoint"])
    adapted, base = logits(checkpoint), logits(tiny_checkpoint)
    assert adapted.shape == base.shape and not torch.allclose(adapted, base, atol=1e-4)
    # Merging still works for such a run, and is the same model.
    merged = tmp_path / "merged"
    assert export(job["work"] / "run", merged, "fp32", merge=True).adapter is None
    assert torch.allclose(logits(merged), adapted, atol=1e-4)


def test_adapter_over_a_missing_or_replaced_base_is_refused(job, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(job["done"]["checkpoint"], adapter)
    card = json.loads((adapter / "card.json").read_text())
    expected = card["adapter"]["base_model_id"]
    card["adapter"]["base_model_id"] = "other-int8-0000"
    (adapter / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(adapter, device="cpu")
    assert "other-int8-0000" in str(e.value) and expected in str(e.value)
    assert card["adapter"]["base"] in str(e.value)
    card["adapter"]["base"] = str(tmp_path / "gone")
    (adapter / "card.json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'gone'} .*which is missing"):
        load_checkpoint(adapter, device="cpu")
    # Export refuses too when the base was replaced after training.
    run = tmp_path / "run"
    shutil.copytree(job["work"] / "run", run)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "base_model_id": "other-int8-0000"}))
    with pytest.raises(CheckpointError, match="was trained on model other-int8-0000, but its base"):
        export(run, tmp_path / "x", "fp32")


def test_a_checkpoint_base_loads_as_trainable_fp32_and_an_adapter_is_no_base(job, tiny_checkpoint):
    import bitsandbytes as bnb
    from transformers.pytorch_utils import Conv1D

    model, tok = load_base(str(tiny_checkpoint))
    assert not any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.modules())
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    # GPT-2 again as its class has it (Conv1D, not bitsandbytes' Linear), computing what the checkpoint does.
    assert isinstance(model.transformer.h[0].attn.c_attn, Conv1D)
    ids = tok(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model.eval()(ids).logits, logits(tiny_checkpoint), atol=1e-5)
    assert tok.padding_side == "right" and tok.eos_token is not None
    with pytest.raises(ConfigError, match="is a LoRA adapter checkpoint"):
        load_base(job["done"]["checkpoint"])


def test_a_resumed_lora_run_keeps_its_start_loss(sample_data, tiny_checkpoint, tmp_path):
    config = train_config("server", sample_data, tmp_path / "run", base=str(tiny_checkpoint), max_steps=2)

    def stop_at_1(progress, loss):
        if progress.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, stop_at_1)
    before = json.loads((tmp_path / "run" / "run.json").read_text())["start_val_loss"]
    summary = train(replace(config, resume=True))
    assert summary["steps"] == 2 and summary["start_val_loss"] == pytest.approx(before, abs=1e-5)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [0, 2]  # the base measured once, not again


def test_upload_without_validation_split_still_trains_and_says_so(sample_data, tiny_checkpoint, tmp_path):
    prepared = tmp_path / "work" / "prepared"  # where the bot prepares it: used in place
    shutil.copytree(sample_data, prepared)
    (prepared / "val.jsonl").write_text("")
    events: list[dict[str, Any]] = []
    done = train_adapter(prepared, tiny_checkpoint, tmp_path / "work", 2, events.append)
    assert events[0]["val_examples"] == 0
    assert done["base_val_loss"] is None and done["val_loss"] is None and done["steps"] == 2
    assert read_card(Path(done["checkpoint"])).adapter["type"] == "lora"


def test_an_adapter_the_bot_could_not_serve_is_never_reported_done(sample_data, tiny_fp32, tmp_path):
    events: list[dict[str, Any]] = []
    with pytest.raises(CheckpointError) as e:  # rank 300: over the check's bound of 256
        train_adapter(sample_data, tiny_fp32, tmp_path / "work", 1, events.append, lora_r=300)
    assert str(e.value).startswith('the trained adapter cannot be served: adapter_config.json: "r" is 300')
    assert str(tmp_path) not in str(e.value)  # the member who uploaded reads it
    assert [ev["event"] for ev in events] == ["start", "step"]
    assert not (tmp_path / "work" / "checkpoint").exists()


def test_sigterm_stops_the_job_and_leaves_no_checkpoint(sample_data, tiny_checkpoint, tmp_path):
    work = tmp_path / "work"
    (work / "checkpoint").mkdir(parents=True)  # an earlier job's: must not pass for this one's

    def stop_at_step_2(event: dict[str, Any]) -> None:
        if event.get("step") == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as e, sigterm_exits():
        train_adapter(sample_data, tiny_checkpoint, work, 20, stop_at_step_2)
    assert e.value.code == 143 and signal.getsignal(signal.SIGTERM) == before
    assert not (work / "checkpoint").exists()
    assert not [p.name for p in work.iterdir() if p.name.startswith(".checkpoint")]
    assert not (work / "run" / "run.json").exists()  # stopped at once, not finished


def test_cli_job_prints_json_lines_and_exits_0(sample_data, tiny_checkpoint, tmp_path):
    argv = [
        sys.executable, "-m", "linernotes", "adapter", "--data", str(sample_data), "--base", str(tiny_checkpoint),
        "--work", str(tmp_path / "work"), "--max-steps", "2", "--exit-with", str(os.getpid()),
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # nothing but events on stdout
    assert [e["event"] for e in events] == ["start", "step", "step", "done"]
    assert read_card(Path(events[-1]["checkpoint"])).model_id == events[-1]["model_id"]


def test_cli_job_reports_a_bad_base_as_an_error_event(sample_data, tmp_path, capsys):
    bad = tmp_path / "not-a-checkpoint"
    argv = ["adapter", "--data", str(sample_data), "--base", str(bad), "--work", str(tmp_path / "w")]
    assert main(argv) == 1
    (line,) = capsys.readouterr().out.splitlines()
    event = json.loads(line)
    assert event["event"] == "error" and str(bad) in event["message"] and "card.json" in event["message"]


def test_exit_with_acts_when_the_watched_process_is_gone():
    sleeper = subprocess.Popen(["sleep", "60"])
    gone = threading.Event()
    exit_with(sleeper.pid, interval=0.05, on_gone=gone.set)
    assert not gone.wait(0.2)
    sleeper.kill()
    sleeper.wait()
    assert gone.wait(5)
    with pytest.raises(ConfigError, match=f"--exit-with {sleeper.pid}: no such process"):
        exit_with(sleeper.pid)


def test_server_recipe_keeps_an_adapter_on_the_135m_base_within_10_mb(tmp_path):
    """r = 8 on every projection of every layer of SmolLM2-135M's shape (what a base whose card does not count
    its layers gets; weights on the meta device: nothing allocated)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
    )  # fmt: skip
    with torch.device("meta"):
        model = add_lora(LlamaForCausalLM(shape), train_config("server", tmp_path, tmp_path / "run"))
    size = 4 * sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 9.5e6 < size <= 10e6


def test_server_recipe_trains_the_top_half_of_a_bases_layers_cached(tmp_path):
    """The 135M base's 30 layers: LoRA on the top 15, the 15 below cached; half the adapter above."""
    from transformers import LlamaConfig, LlamaForCausalLM

    assert upper_layers({"model_type": "gpt2", "n_layer": 12}) == {"lora_layers": 6, "cache_frozen": True}
    assert upper_layers({"model_type": "llama", "num_hidden_layers": 3})["lora_layers"] == 2
    assert upper_layers({}) == {}  # a card that does not say: every layer, as before
    layers = upper_layers({"model_type": "llama", "num_hidden_layers": 30})
    shape = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
    )  # fmt: skip
    with torch.device("meta"):
        model = add_lora(
            LlamaForCausalLM(shape), train_config("server", tmp_path, tmp_path / "run", **layers)
        )
    adapted = {
        int(n.split(".layers.")[1].split(".")[0]) for n, p in model.named_parameters() if p.requires_grad
    }
    assert adapted == set(range(15, 30))
    assert 4.5e6 < 4 * sum(p.numel() for p in model.parameters() if p.requires_grad) <= 5e6
