"""Training end to end on the bundled corpus: learning, exact resume, LoRA, export, bad input."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from linernotes.common.errors import CheckpointError, ConfigError, InputError
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.training.config import TrainConfig
from linernotes.training.export import export
from linernotes.training.loop import train
from linernotes.training.sweep import parse_sizes, sweep
from tests.conftest import tiny_config


def losses(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_tiny_run_learns_and_records_everything(tiny_run):
    curve = [loss for _, loss in losses(tiny_run)]
    assert len(curve) == 40
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 1.0  # clearly learning
    summary = json.loads((tiny_run / "run.json").read_text())
    assert summary["status"] == "complete" and summary["best_val_loss"] is not None
    assert set(summary["tags"]) == {"review", "product", "lyrics"}
    assert "Metal" in summary["tags"]["review"]["genre"] and "chorus" in summary["tags"]["lyrics"]["part"]
    assert (tiny_run / "loss.png").stat().st_size > 1000
    samples = [json.loads(line) for line in (tiny_run / "samples.jsonl").read_text().splitlines()]
    assert {s["kind"] for s in samples} == {"review", "product", "lyrics"}
    assert (tiny_run / "best" / "model.safetensors").is_file()


@pytest.mark.parametrize("precision", ["int8", "fp16", "fp32"])
def test_export_each_precision_loads_back(tiny_run, tmp_path, precision):
    out = tmp_path / f"ck-{precision}"
    card = export(tiny_run, out, precision)
    assert read_card(out).precision == precision and card.tags["review"]["score_range"][1] <= 10
    loaded = load_checkpoint(out, precision="int8" if precision == "int8" else "fp32")
    assert loaded.card.model_id == card.model_id
    ids = loaded.tokenizer("<|review|> genre: Metal | score: 7.5\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = loaded.model(ids).logits
    assert torch.isfinite(logits).all()
    if precision == "int8":
        import bitsandbytes as bnb

        assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in loaded.model.modules())
        assert (out / "model.safetensors").stat().st_size < (
            tiny_run / "best" / "model.safetensors"
        ).stat().st_size


@pytest.mark.parametrize("pair_weight", [0.0, 1.0])
def test_resume_continues_the_same_loss_curve(sample_data, tmp_path, pair_weight):
    """Interrupted and resumed, a run logs the straight run's losses (and its pair loss: the draws are the
    step's)."""
    settings = {
        "steps": 10,
        "eval_every": 3,
        "save_every": 100,
        "tag_dropout": 0.2,
        "pair_weight": pair_weight,
    }
    straight = tmp_path / "straight"
    train(tiny_config(sample_data, straight, **settings))

    def stop_at_6(progress, loss):
        if progress.step == 6:
            raise KeyboardInterrupt

    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(sample_data, broken, **settings), stop_at_6)
    assert json.loads((broken / "run.json").read_text())["status"] == "interrupted"
    train(tiny_config(sample_data, broken, **settings, resume=True))
    assert losses(broken) == losses(straight)  # same steps, same losses, no duplicated lines
    assert pair_losses(broken) == pair_losses(straight) and bool(pair_losses(straight)) == bool(pair_weight)


def pair_losses(run: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["pair_loss"]) for r in rows if "pair_loss" in r]


def test_resume_refuses_other_settings_and_reuse_without_resume(tiny_run, sample_data, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    with pytest.raises(CheckpointError, match="already holds a run; pass --resume"):
        train(tiny_config(sample_data, run))
    with pytest.raises(
        CheckpointError, match=r"cannot resume with different settings \(from_scratch: 'tiny' -> 'small'"
    ):
        train(tiny_config(sample_data, run, from_scratch="small", resume=True))
    (run / "state" / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="state.pt: corrupted, cannot resume"):
        train(tiny_config(sample_data, run, steps=50, resume=True))


def test_lora_train_export_and_merge(tiny_run, sample_data, tmp_path):
    base = tiny_run / "best"  # a local base model directory, as users pass with --base PATH
    run = tmp_path / "lora"
    summary = train(
        TrainConfig(
            data=str(sample_data),
            out=str(run),
            base=str(base),
            lora=True,
            lora_r=4,
            steps=4,
            batch_size=4,
            block_size=256,
            eval_every=2,
            progress=False,
        )
    )
    assert summary["status"] == "complete"
    assert (run / "best" / "adapter_model.safetensors").is_file()
    adapter_ck, merged_ck = tmp_path / "adapter", tmp_path / "merged"
    export(run, adapter_ck, "fp32")
    export(run, merged_ck, "fp32", merge=True)
    assert read_card(adapter_ck).adapter["base"] == str(base) and read_card(merged_ck).adapter is None
    assert (adapter_ck / "adapter_model.safetensors").stat().st_size < (
        merged_ck / "model.safetensors"
    ).stat().st_size
    a, m = load_checkpoint(adapter_ck, "fp32"), load_checkpoint(merged_ck, "fp32")
    ids = a.tokenizer("<|lyrics|> part: chorus\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(a.model(ids).logits, m.model(ids).logits, atol=1e-4)
    with pytest.raises(ConfigError, match="pass --merge"):
        export(run, tmp_path / "x", "int8")


def test_corrupted_checkpoints_say_what_is_wrong(tiny_fp32, tmp_path):
    ck = tmp_path / "ck"
    shutil.copytree(tiny_fp32, ck)
    (ck / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="weights or tokenizer could not be loaded"):
        load_checkpoint(ck)
    (ck / "card.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="card.json: corrupted"):
        load_checkpoint(ck)
    card = json.loads((tiny_fp32 / "card.json").read_text())
    (ck / "card.json").write_text(json.dumps({**card, "format_version": 99}))
    with pytest.raises(
        CheckpointError, match="uses tag format version 99; this linernotes understands version 1"
    ):
        load_checkpoint(ck)
    with pytest.raises(CheckpointError, match="not a linernotes checkpoint"):
        load_checkpoint(tmp_path)


def test_export_is_atomic(tiny_run, tmp_path):
    out = tmp_path / "ck"
    export(tiny_run, out, "fp32")
    before = read_card(out).model_id

    def full_disk(directory):
        raise OSError(28, "No space left on device")

    from linernotes.model.checkpoint import save_checkpoint

    loaded = load_checkpoint(out, "fp32")
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(out, loaded.model, loaded.tokenizer, loaded.card, "fp32", extras=full_disk)
    assert read_card(out).model_id == before  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no half-written leftovers


def test_bad_data_and_options(tmp_path, sample_data):
    with pytest.raises(InputError, match="no such directory"):
        train(tiny_config(tmp_path / "nope", tmp_path / "r"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.jsonl").write_text("")
    with pytest.raises(InputError, match="the train split is empty"):
        train(tiny_config(empty, tmp_path / "r"))
    with pytest.raises(ConfigError, match="--lr must be positive"):
        tiny_config(sample_data, tmp_path / "r", lr=0)
    with pytest.raises(ConfigError, match="--batch-size must be positive"):
        tiny_config(sample_data, tmp_path / "r", batch_size=0)


def test_missing_base_offline_explains_what_to_do(sample_data, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as e:
        train(TrainConfig(data=str(sample_data), out=str(tmp_path / "r"), base="gpt2-medium", progress=False))
    message = str(e.value)
    assert "local Hugging Face cache" in message and "hub is unreachable" in message
    assert "local directory" in message and "--from-scratch" in message


def test_sweep_writes_csv_and_plot(sample_data, tmp_path):
    base = tiny_config(sample_data, tmp_path / "unused", steps=3, eval_every=3)
    rows = sweep(base, parse_sizes("40,120"), tmp_path / "sweep")
    assert [r["examples"] for r in rows] == [40, 120]
    assert (tmp_path / "sweep" / "sweep.csv").read_text().startswith("examples,requested,best_val_loss")
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 1000
    with pytest.raises(ConfigError, match="--sizes"):
        parse_sizes("10,x")


def test_time_budget_stops_with_an_evaluated_best(sample_data, tmp_path):
    summary = train(tiny_config(sample_data, tmp_path / "run", steps=500, eval_every=400, max_minutes=0.002))
    assert summary["status"] == "time-budget"
    assert 0 < summary["steps"] < 500
    # Stopped between evaluations, it evaluated once more so the best weights exist.
    assert (
        summary["best_val_loss"] is not None and (tmp_path / "run" / "best" / "model.safetensors").is_file()
    )
    with pytest.raises(ConfigError, match="--max-minutes must be positive"):
        tiny_config(sample_data, tmp_path / "x", max_minutes=0)
