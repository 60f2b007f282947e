"""``train_throughput.py --lora135m``: the training people wait for, a LoRA adapter on SmolLM2-135M.

Sides, each a full training run parked between steps and interleaved step by step in one process (the
machinery of train_throughput.py):

- today: our trainer on the recipe (``demo``: r 16 on every projection, 4 blocks of 256, the bundled
  sample corpus; ``server``: r 8, the upload sample) with the settings it had before issue #26: the
  dense block-diagonal mask, peft's LoRA forward, fp32 and LoRA dropout 0.05 (torch's masks).
- ours: ``demo``: the recipe with the candidate settings (``CANDIDATE``: the same computation in other
  kernels, tested in tests/training/test_same_loss.py); ``server``: the recipe as a server's job trains
  it (LoRA on the top half of the layers, the frozen half cached: training/server.py ``upper_layers``),
  timed over the whole job, since the cache filled on the first pass pays on the later ones (``RESULT
  lora135m_server_job_speedup``; run all 24 steps of the job: ``--warmup 2 --steps 22``). ``--variant
  ours:k=v,...`` replaces the candidate.
- hf: Hugging Face ``Trainer`` with peft's LoRA of the same rank, alpha, dropout and projections, fp32,
  on our chunks (each example as our packer cuts it, at most one block; nothing truncated) in the
  batches ``group_by_length`` makes, sized to our 1,024 positions per step on average; loss on every
  real token, the LM head on every position (what a practitioner's script does).
- any ``--variant NAME:k=v,...``: our trainer with those ``TrainConfig`` fields (a lever on its own);
  two keys are the bench's own: ``autocast=bf16`` wraps the forward in CPU bf16 autocast (fp32 master
  weights), which Accelerate would do for ``--precision bf16`` but cannot for one side of a process
  only; ``compile=1`` runs the model body through ``torch.compile`` (its compile time lands in the
  side's first step, which the table prints).

Useful tokens per second (body and end tokens, each once) are medians over the timed steps.
``--profile`` instead runs a few steps of one side and prints where one step's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train_throughput import (
    REPO,
    Collate,
    Count,
    Gate,
    gated_ours,
    gated_trainer,
    length_grouped,
    run_interleaved,
    summary,
)

SOURCES = {"demo": REPO / "data" / "sample", "server": REPO / "data" / "upload_sample"}
BASE = "smollm2-135m"
# Today's recipe as it ran before issue #26, whatever the defaults and recipes become (the demo recipe has
# trained without LoRA dropout since; both recipes had 0.05).
TODAY = {
    "attention": "mask",
    "lora_forward": "peft",
    "threads": None,
    "precision": "fp32",
    "lora_dropout": 0.05,
    "dropout_draws": "torch",
}
# What "ours" runs unless --variant ours:... says otherwise. Demo: not TrainConfig's defaults: they won on the
# server recipe's short sections (which now use them), not on the demo's (docs/benchmarks.md "Training the 135M
# base's LoRA"). Server: the job as a server's /model train runs it (training/server.py adds the upper layers
# and the frozen cache to the recipe): ``candidate``.
CANDIDATE = {"attention": "segments", "lora_forward": "fused"}


def parse_variants(specs: list[str]) -> dict[str, dict[str, str]]:
    """``NAME:key=value,key=value`` -> {NAME: {key: value}} (values as strings, typed by ``overrides``)."""
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, _, pairs = spec.partition(":")
        out[name] = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
    return out


BENCH_KEYS = ("autocast", "compile")  # variant keys that tune a side, not TrainConfig fields


def overrides(pairs: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(TrainConfig overrides typed by the field's default, the bench's own keys: ``BENCH_KEYS``)."""
    from linernotes.training.config import TrainConfig

    fields = TrainConfig.__dataclass_fields__
    typed: dict[str, Any] = {}
    for key, value in pairs.items():
        if key in BENCH_KEYS:
            continue
        kind = type(fields[key].default)
        if value == "none":
            typed[key] = None
        elif kind is bool:
            typed[key] = value.lower() in ("1", "true", "yes")
        else:
            typed[key] = int(value) if kind in (int, type(None)) else kind(value)
    return typed, {k: v for k, v in pairs.items() if k in BENCH_KEYS}


def config_for(a: argparse.Namespace, data: Path, out: Path, steps: int, settings: dict[str, Any]):
    """The recipe's TrainConfig for a bench side: ``steps`` steps, no validation, saving or progress bar."""
    from linernotes.training.pipeline import train_config

    recipe = a.recipe
    fixed = {"base": a.base, "steps": steps, "eval_every": 10_000, "save_every": 10_000, "progress": False}
    return train_config(recipe, data, out, **{**settings, **fixed})


def tune(trainer, bench: dict[str, str]) -> None:
    """Apply the bench's own keys to ``trainer``: CPU autocast of its forward, ``torch.compile`` of its body."""
    import torch

    if bench.get("compile", "0") != "0":
        # Static shapes: every micro-batch is batch_size x block_size; the LM head (target positions
        # only, a different count each step) stays outside the compiled graph.
        trainer.loss.body = torch.compile(trainer.loss.body, dynamic=False)
    if not bench.get("autocast"):
        return
    forward = trainer._forward
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[bench["autocast"]]

    def autocast_forward(blocks: list):
        with torch.autocast("cpu", dtype=dtype):
            return forward(blocks)

    trainer._forward = autocast_forward


def run_ours(config, gate: Gate, bench: dict[str, str]) -> tuple[dict, Callable]:
    """Our trainer on ``config``, parked between steps; reports useful tokens per step."""
    return gated_ours(config, gate, lambda trainer: tune(trainer, bench))


def run_hf(config, gate: Gate) -> tuple[dict, Callable]:
    """HF ``Trainer`` + peft on our chunks in group_by_length batches, parked by a callback."""
    import torch

    from linernotes.training.dataset import load
    from linernotes.training.packing import encode, segments
    from linernotes.training.setup import add_lora, load_pretrained

    model, tok = load_pretrained(config.base)
    examples = encode(tok, load(config.data, []).train)
    rows = [
        {"input_ids": ids, "useful": len(ids) - n_head}
        for ex in examples
        for ids, n_head in segments(ex, config.block_size, tok.eos_token_id)
    ]
    mean = sum(len(r["input_ids"]) for r in rows) / len(rows)
    batch = max(1, round(config.batch_size * config.block_size / mean))
    counts: deque[Count] = deque()  # collation order is training order: a FIFO
    torch.manual_seed(0)
    run = gated_trainer(
        add_lora(model, config), length_grouped(rows, batch), Collate(tok, None, counts), counts, gate,
        output_dir=str(Path(config.out).parent / "hf"), per_device_train_batch_size=batch,
        max_steps=config.steps, learning_rate=config.lr, max_grad_norm=config.grad_clip,
        train_sampling_strategy="sequential",  # the rows are already in group_by_length's batches
    )  # fmt: skip
    widest = max(len(r["input_ids"]) for r in rows)
    return {"examples": len(examples), "truncated": 0, "batch": f"{batch}x<={widest}"}, run


def candidate(recipe: str, base: str) -> dict[str, str]:
    """The "ours" side's settings for ``recipe``: the demo's CANDIDATE, or the server job's upper layers."""
    if recipe != "server":
        return dict(CANDIDATE)
    from transformers import AutoConfig

    from linernotes.model.bases import resolve_base
    from linernotes.training.server import upper_layers

    config = AutoConfig.from_pretrained(resolve_base(base), local_files_only=True)
    return {k: str(int(v)) for k, v in upper_layers(config.to_dict()).items()}


def side_settings(
    variants: dict[str, dict[str, str]], ours: dict[str, str]
) -> dict[str, tuple[dict[str, Any], dict[str, str]]]:
    """Every side of ours: today, ours (``ours`` unless a variant replaces it) and the named variants."""
    sides: dict[str, tuple[dict[str, Any], dict[str, str]]] = {"today": (dict(TODAY), {})}
    sides["ours"] = overrides(variants.get("ours", ours))
    for name, pairs in variants.items():
        if name not in ("ours", "today", "hf"):
            sides[name] = overrides(pairs)
    return sides


def measure_sides(a: argparse.Namespace) -> dict[str, Any]:
    """(In the measuring process) all sides built and interleaved; figures as train_throughput's."""
    import torch

    data, tmp = Path(a.data), Path(a.tmp)
    default_threads = torch.get_num_threads()
    gates: dict[str, Gate] = {}
    built: dict[str, tuple[dict, Callable]] = {}
    sides = side_settings(parse_variants(a.variant), candidate(a.recipe, a.base))
    for name, (settings, bench) in sides.items():
        config = config_for(a, data, tmp / name, a.steps, settings)
        gates[name] = Gate(config.threads or default_threads)
        built[name] = run_ours(config, gates[name], bench)
        built[name][0]["settings"] = {**settings, **bench}
    if not a.no_hf:
        config = config_for(a, data, tmp / "hf", a.steps, {})
        gates["hf"] = Gate(default_threads)
        built["hf"] = run_hf(config, gates["hf"])
    torch.set_num_threads(default_threads)
    return run_interleaved(gates, built, a.steps)


def speedups(results: dict[str, dict], figure: str = "useful_per_s") -> tuple[float, float | None]:
    """(ours / today, ours / hf) in ``figure``: median useful tokens per second, or the whole job's."""
    ours = results["ours"][figure]
    hf = results["hf"][figure] if "hf" in results else None
    return ours / results["today"][figure], (ours / hf if hf else None)


def prepared_corpus(recipe: str, out: Path) -> Path:
    """The recipe's corpus prepared as ``pipeline.build`` prepares it (default settings)."""
    from linernotes.training.pipeline import prepare_once

    prepare_once([SOURCES[recipe]], out, {}, lambda line: None)
    return out


def median_line(results: dict[str, dict]) -> str:
    """One line per side: useful tok/s, s/step, useful share of positions, batch, settings."""
    lines = [f"{'side':8} {'useful tok/s':>12} {'s/step':>7} {'useful/pos':>10} {'batch':>9}  settings"]
    for name, r in results.items():
        settings = r.get("settings", {"": "HF Trainer + peft, group_by_length on our chunks"})
        lines.append(
            f"{name:8} {r['useful_per_s']:12.1f} {r['seconds']:7.2f} {r['useful_share']:10.0%} "
            f"{r['batch']:>9}  {settings}"
        )
    return "\n".join(lines)


def describe(base: str, recipe: str, steps: int, warmup: int) -> str:
    """The header line."""
    return (
        f"LoRA on {base}, recipe {recipe!r}, CPU ({os.cpu_count()} cores), sides interleaved step by step; "
        f"medians of {steps} timed steps after {warmup}; load average {os.getloadavg()[0]:.1f} at start"
    )


def spread(reports: list[dict], warmup: int) -> str:
    """Quartiles of a side's useful tokens/s, to show how noisy its median is."""
    rates = [r["useful"] / r["seconds"] for r in reports[warmup:]]
    if len(rates) < 4:
        return ""
    q = statistics.quantiles(rates, n=4)
    return f"{q[0]:.0f}-{q[2]:.0f}"


# --- the profile of one step ------------------------------------------------------------------------


def category(name: str, shapes: list, sizes: dict[str, int]) -> str:
    """Which part of a LoRA training step an aten op (with its input shapes) belongs to."""
    dims = [tuple(s) for s in shapes if isinstance(s, (list, tuple)) and s and isinstance(s[0], int)]
    flat = {d for s in dims for d in s}
    matmul = name in ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm")
    if sizes["vocab"] in flat or "log_softmax" in name or "nll_loss" in name:
        return "LM head and loss (vocabulary projection, log-softmax)"
    if "scaled_dot_product" in name or "flash_attention" in name:
        return "attention kernel (SDPA, forward and backward)"
    if any(len(s) == 4 and s[-1] == s[-2] == sizes["block"] for s in dims) or any(len(s) == 5 for s in dims):
        return "dense mask and its GQA copies (repeat_kv)"
    heads = any(len(s) == 3 and s[-1] == sizes["head_dim"] for s in dims)  # (tokens, heads, head_dim)
    if heads and name in ("aten::index", "aten::index_put_", "aten::_index_put_impl_", "aten::new_zeros"):
        return "segment gather and scatter"
    if matmul and sizes["rank"] in flat:
        return "LoRA matmuls (A and B, forward and backward)"
    if name == "aten::bernoulli_":
        return "LoRA dropout masks (bernoulli)"
    if matmul and sizes["mlp"] in flat:
        return "MLP matmuls (gate, up, down; frozen)"
    if matmul:
        return "attention projections (q, k, v, o; frozen)"
    if "adam" in name or "_foreach" in name or "vector_norm" in name:
        return "optimizer and gradient clipping"
    return "other elementwise (norms, RoPE, SiLU, residuals, LoRA scale and add, grad sums, collation)"


def profile(a: argparse.Namespace, tmp: Path) -> None:
    """Print where one training step of side ``a.profile`` goes, by part and by operator."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from linernotes.training.loop import Trainer

    data = prepared_corpus(a.recipe, tmp / "prepared")
    settings, bench = side_settings(parse_variants(a.variant), candidate(a.recipe, a.base))[a.profile]
    config = config_for(a, data, tmp / a.profile, a.warmup + 1, settings)
    trainer = Trainer(config)
    trainer.val_blocks = []
    tune(trainer, bench)
    batches = trainer._batches()
    for _ in range(a.warmup):
        trainer._step(batches)
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        trainer._step(batches)
    model = trainer.model.config
    sizes = {"vocab": model.vocab_size, "block": config.block_size, "rank": config.lora_r}
    sizes["mlp"] = getattr(model, "intermediate_size", 0)
    sizes["head_dim"] = getattr(model, "head_dim", None) or model.hidden_size // model.num_attention_heads
    parts: dict[str, float] = {}
    ops: dict[str, float] = {}
    for event in prof.key_averages(group_by_input_shape=True):
        if not event.key.startswith("aten::"):
            continue  # ranges (autograd wrappers, Optimizer.step) hold little self time of their own
        part = category(event.key, event.input_shapes, sizes)
        parts[part] = parts.get(part, 0.0) + event.self_cpu_time_total / 1e6
        ops[event.key] = ops.get(event.key, 0.0) + event.self_cpu_time_total / 1e6
    total = sum(parts.values())
    print(f"one step of {a.profile} ({settings}), {total:.2f} s of operator time")
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:7.2f} s {seconds / total:6.1%}  {part}")
    print("top operators:")
    for op, seconds in sorted(ops.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {seconds:7.2f} s {seconds / total:6.1%}  {op}")


# --- the run ------------------------------------------------------------------------------------------


def measure(a: argparse.Namespace, data: Path, tmp: Path) -> tuple[dict[str, dict], float]:
    """All sides interleaved in a fresh process; (figures per side, that process's peak RSS in MB)."""
    cmd = [sys.executable, str(REPO / "bench" / "train_throughput.py"), "--lora135m", "--measure"]
    cmd += ["--data", str(data), "--tmp", str(tmp), "--steps", str(a.warmup + a.steps), "--recipe", a.recipe]
    cmd += ["--base", a.base] + [f"--variant={v}" for v in a.variant] + (["--no-hf"] if a.no_hf else [])
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}  # one heap shared by the side threads
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"measuring failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    sides = {n: {**side, **summary(side["steps"], a.warmup)} for n, side in out["sides"].items()}
    return sides, out["peak_rss_mb"]


def main(a: argparse.Namespace) -> None:
    """``--lora135m``: measure (or ``--profile``) and print the table and the RESULT line."""
    if a.measure:  # the process that runs the sides: its figures as JSON on the last line
        print(json.dumps(measure_sides(a)))
        return
    print(describe(a.base, a.recipe, a.steps, a.warmup), flush=True)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if a.profile:
            profile(a, tmp)
            return
        data = prepared_corpus(a.recipe, tmp / "prepared")
        results, peak = measure(a, data, tmp)
    print("useful = body and end tokens, each once; useful/pos = useful share of the positions computed")
    print(median_line(results))
    for name, r in results.items():
        first = r["steps"][0]["seconds"]
        print(
            f"  {name}: useful tok/s quartiles {spread(r['steps'], a.warmup)}; first step {first:.1f} s; "
            f"all {len(r['steps'])} steps {r['job_useful_per_s']:.1f} useful tok/s"
        )
    print(
        f"peak RSS of the process running every side: {peak / 1024:.1f} GB; load average {os.getloadavg()[0]:.1f} at end"
    )
    if a.dump:
        Path(a.dump).write_text(json.dumps(results, indent=1) + "\n")
    # A server job trains an upload for several passes, and its frozen cache is filled on the first: the
    # whole job's rate is what a member waits on (a median of steps would count mostly cached ones).
    job = a.recipe == "server"
    speed, baseline = speedups(results, "job_useful_per_s" if job else "useful_per_s")
    if baseline is not None:
        print(
            f"ours vs HF Trainer + peft with group_by_length on the same chunks: {baseline:.2f}x (target >= 1.2x)"
        )
    metric = "lora135m_server_job_speedup" if job else "lora135m_speedup"
    print(f"RESULT {metric} {speed:.2f}x target >= 2.0x")
