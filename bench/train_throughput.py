"""Training throughput: our trainer against the common published recipe, same data, same GPT-2.

Both sides train the GPT-2 small architecture (124M parameters, random init, GPT-2's vocabulary size)
on the same prepared examples, on this machine's CPU, fp32. What is compared is *useful* tokens per
second: tokens of real examples, not padding.

- ours: ``linernotes`` packing (examples packed whole into 256-token blocks, block-diagonal attention,
  no truncation, LM head only on target positions), batch 4 blocks;
- published recipe: Hugging Face ``Trainer``, every example padded or truncated to 128 tokens, batch 4,
  ``DataCollatorForLanguageModeling(mlm=False)`` (what GPT-2 fine-tuning tutorials and review
  generators use).

Each side runs in its own process, so its peak memory (max RSS) is its own. Usage::

    python bench/train_throughput.py [--data PREPARED_DIR] [--steps 12] [--warmup 3]

Without --data it prepares ../shared/corpora/genius-lyrics-100artists when present, else the
bundled sample corpus. Ends with ``RESULT train_speedup <x> target >= 3x``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import peak_rss_mb  # noqa: E402

GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}


def prepared_data(tmp: Path) -> Path:
    from data.config import DataConfig
    from data.prepare import prepare

    genius = REPO.parent / "shared" / "corpora" / "genius-lyrics-100artists" / "jsons"
    source = genius if genius.exists() else REPO / "data" / "sample"
    out = tmp / "prepared"
    prepare(DataConfig(sources=[str(source)], out=str(out)))
    return out


def tokenizer_for(data: Path, tmp: Path):
    """One tokenizer both sides use: byte-level BPE trained on the training split."""
    from data.splits import read_split
    from training.setup import train_tokenizer

    path = tmp / "tokenizer"
    if not path.exists():
        tok = train_tokenizer([i.record.text for i in read_split(data, "train")], 8192)
        tok.save_pretrained(path)
    return path


def model(tok_len: int):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(**{**GPT2_SMALL, "vocab_size": max(GPT2_SMALL["vocab_size"], tok_len)}))


def run_ours(data: Path, tmp: Path, steps: int, warmup: int) -> dict:
    from transformers import AutoTokenizer

    import training.setup as setup
    from training.config import TrainConfig
    from training.loop import Trainer

    tok = AutoTokenizer.from_pretrained(tokenizer_for(data, tmp))
    # Same model and tokenizer as the other side: bypass building a fresh small model.
    setup.build = lambda config, texts: (model(len(tok)), tok)
    config = TrainConfig(
        data=str(data),
        out=str(tmp / "ours"),
        base="bench",
        steps=steps + warmup,
        batch_size=4,
        block_size=256,
        eval_every=10_000,
        save_every=10_000,
        progress=False,
        precision="fp32",
    )
    marks: list[tuple[float, int]] = []
    trainer = Trainer(config, on_step=lambda p, loss: marks.append((time.perf_counter(), p.tokens)))
    trainer.val_blocks = []  # throughput only
    trainer.train()
    (t0, tok0), (t1, tok1) = marks[warmup - 1], marks[-1]
    total_examples = len(trainer.data.train)
    return {
        "tokens_per_s": (tok1 - tok0) / (t1 - t0),
        "seconds_per_step": (t1 - t0) / steps,
        "examples": total_examples,
        "truncated_examples": 0,
    }


def run_hf(data: Path, tmp: Path, steps: int, warmup: int) -> dict:
    import torch
    from transformers import (
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from data.format import render
    from data.splits import read_split

    tok = AutoTokenizer.from_pretrained(tokenizer_for(data, tmp))
    tok.pad_token = tok.eos_token
    texts = [render(i.record) for i in read_split(data, "train")]
    full = [len(tok(t)["input_ids"]) for t in texts]
    enc = tok(texts, padding="max_length", truncation=True, max_length=128)
    rows = [
        {"input_ids": ids, "attention_mask": m}
        for ids, m in zip(enc["input_ids"], enc["attention_mask"], strict=True)
    ]
    useful_per_example = sum(sum(r["attention_mask"]) for r in rows) / len(rows)
    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            marks.append(time.perf_counter())

    args = TrainingArguments(
        output_dir=str(tmp / "hf"),
        per_device_train_batch_size=4,
        max_steps=steps + warmup,
        learning_rate=5e-4,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    torch.manual_seed(0)
    trainer = Trainer(
        model=model(len(tok)),
        args=args,
        train_dataset=rows,
        data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
        callbacks=[Clock()],
    )
    trainer.train()
    seconds = marks[-1] - marks[warmup - 1]
    return {
        "tokens_per_s": useful_per_example * 4 * steps / seconds,
        "seconds_per_step": seconds / steps,
        "examples": len(rows),
        "truncated_examples": sum(n > 128 for n in full),
        "useful_share": useful_per_example / 128,
    }


def side(name: str, data: Path, tmp: Path, steps: int, warmup: int) -> dict:
    result = (run_ours if name == "ours" else run_hf)(data, tmp, steps, warmup)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--side", choices=["ours", "hf"], help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.side:  # child process: one side, JSON on the last line
        print(json.dumps(side(a.side, Path(a.data), Path(a.tmp), a.steps, a.warmup)))
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        data = Path(a.data) if a.data else prepared_data(tmp)
        tokenizer_for(data, tmp)
        results = {}
        for name in ("ours", "hf"):
            cmd = [
                sys.executable,
                __file__,
                "--side",
                name,
                "--data",
                str(data),
                "--tmp",
                str(tmp),
                "--steps",
                str(a.steps),
                "--warmup",
                str(a.warmup),
            ]
            out = (
                subprocess.run(cmd, check=True, capture_output=True, text=True)
                .stdout.strip()
                .splitlines()[-1]
            )
            results[name] = json.loads(out)
    ours, hf = results["ours"], results["hf"]
    print(
        f"data: {data if a.data else 'prepared ' + ('Genius lyrics' if 'genius' in str(data) or (REPO.parent / 'shared').exists() else 'sample')}"
        f" ({ours['examples']} training examples); GPT-2 small architecture, fp32, CPU, {a.steps} timed steps"
    )
    print(
        f"ours (packed 4x256, no truncation):   {ours['tokens_per_s']:8.0f} useful tokens/s, "
        f"{ours['seconds_per_step']:.2f} s/step, peak RSS {ours['peak_rss_mb']:.0f} MB, truncated 0"
    )
    print(
        f"HF Trainer (padded/truncated 4x128):  {hf['tokens_per_s']:8.0f} useful tokens/s, "
        f"{hf['seconds_per_step']:.2f} s/step, peak RSS {hf['peak_rss_mb']:.0f} MB, "
        f"truncated {hf['truncated_examples']} of {hf['examples']} examples, {hf['useful_share']:.0%} of tokens useful"
    )
    ratio = ours["tokens_per_s"] / hf["tokens_per_s"]
    print(f"RESULT train_speedup {ratio:.2f}x target >= 3x")


if __name__ == "__main__":
    main()
