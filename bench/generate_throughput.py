"""Generation throughput on the real 135M base: our batched generator against what a user would write.

The model is the demo's: the pretrained offline base (``smollm2-135m``: Llama architecture, 134.5M
parameters, 49,152-token vocabulary) fine-tuned by the ``demo`` recipe on the bundled corpus (the demo's
own training run is reused when present, else trained here through the same pipeline), exported merged
as int8 and as fp32. This machine's CPU; 64 mixed requests (32 reviews across the card's genres and
scores, 32 lyrics parts); every side samples with the bot's settings and stops where the bot does (the
end marker, or ``--tokens`` new tokens), so each writes texts of natural, mixed lengths
(``--fixed``: every output exactly ``--tokens`` long instead, all sides doing identical work):

- ours: ``model.backends.LocalBackend`` (left-padded batches of 32, KV cache, per-request sampling,
  header masking, finished rows dropped from the batch);
- batched ``model.generate``: the same batches of 32, left-padded, the same sampling settings;
- ``pipeline("text-generation")`` called once per request (on the first ``--pipeline-requests``
  requests only: at batch 1 the whole set takes many minutes; the rate is per generation either way).

Ours and ``generate`` run in alternating fresh processes (A B A B ...; ``--rounds``) and the medians
are reported, so a busy machine slows both alike. Also measured, each in a fresh process: load time,
memory and generation speed of the int8 (bitsandbytes) and fp32 checkpoints, and the latency of one
request alone (what a cache miss costs); the copy guard's cost per text; process memory over many
generate calls (it must stay flat).

Ends with ``RESULT generate_vs_batched_generate <x> target >= 2x``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import peak_rss_mb  # noqa: E402

BASE = "smollm2-135m"
SAMPLE = REPO / "data" / "sample"


def requests(tmp: Path) -> list[str]:
    """64 mixed prompts the checkpoint knows: 32 reviews (genre x score), 32 lyrics parts."""
    from linernotes.data.format import prompt
    from linernotes.model.card import read_card

    card = read_card(tmp / "fp32")
    genres, parts = card.values("review", "genre"), card.values("lyrics", "part")
    scores = (2.0, 5.5, 7.5, 9.0)
    said = card.rendering
    reviews = [
        prompt("review", rendering=said, genre=genres[i % len(genres)], score=scores[i % 4])
        for i in range(32)
    ]
    lyrics = [prompt("lyrics", rendering=said, part=parts[i % len(parts)]) for i in range(32)]
    return reviews + lyrics


def training_run(arg: str | None, work: Path) -> Path:
    """The fine-tuned run to export: ``--run``, else the demo's, else one trained here by the pipeline."""
    from linernotes.cli.demo import RECIPE, demo_home
    from linernotes.training.pipeline import build

    for run in ([Path(arg)] if arg else []) + [demo_home(None) / "run", work / "run"]:
        if (run / "run.json").is_file():
            return run
    if arg:
        sys.exit(f"--run {arg}: no training run there (run.json missing)")
    return build([SAMPLE], work, RECIPE, precision=None, say=print).run


def build_checkpoints(run: Path, tmp: Path) -> None:
    """``run`` exported merged as fp32 and as int8 linernotes checkpoints (the bot's load path), and the
    bundled corpus prepared (the copy guard's and the memory check's texts)."""
    from linernotes.data.config import DataConfig
    from linernotes.data.prepare import prepare
    from linernotes.training.export import export, read_run

    prepare(DataConfig(sources=[str(SAMPLE)], out=str(tmp / "data")))
    lora = bool(read_run(run)["config"].get("lora"))
    for precision in ("fp32", "int8"):
        export(run, tmp / precision, precision, merge=lora)


def fixed_length(backend) -> None:
    """Make every output exactly max_new_tokens long: no end marker, no header stop."""
    backend.eos = -1
    backend.token_text = [""] * len(backend.token_text)


def side_ours(tmp: Path, n_tokens: int, fixed: bool) -> dict:
    from linernotes.model.backends import LocalBackend, PromptText
    from linernotes.model.checkpoint import load_checkpoint
    from linernotes.model.config import Sampling

    loaded = load_checkpoint(tmp / "fp32", "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    if fixed:
        fixed_length(backend)
    prompts = [PromptText(p) for p in requests(tmp)]
    params = [Sampling(max_new_tokens=n_tokens, seed=i) for i in range(len(prompts))]
    backend.complete(prompts[:2], params[:2])  # warm-up
    start = time.perf_counter()
    outs = []
    for i in range(0, len(prompts), 32):
        outs += backend.complete(prompts[i : i + 32], params[i : i + 32])
    seconds = time.perf_counter() - start
    tokens = [o.tokens for o in outs]
    assert not fixed or set(tokens) == {n_tokens}, tokens
    return rates(len(outs), sum(tokens), seconds)


def rates(generations: int, tokens: int, seconds: float) -> dict:
    """Generations per minute and new tokens per second of one side's run."""
    return {"per_minute": 60 * generations / seconds, "tokens_s": tokens / seconds, "seconds": seconds}


def hf_kwargs(tok, n_tokens: int, fixed: bool) -> dict:
    """``generate`` settings equal to ours: the bot's sampling, at most (``fixed``: exactly) ``n_tokens``."""
    return {
        "max_new_tokens": n_tokens,
        "min_new_tokens": n_tokens if fixed else 0,
        "do_sample": True,
        "top_k": 50,
        "top_p": 0.95,
        "temperature": 0.9,
        "repetition_penalty": 1.1,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
    }


def new_tokens(out, prompt_len: int, eos: int) -> int:
    """Tokens ``generate`` wrote for one row (up to and including its end marker)."""
    row = out[prompt_len:].tolist()
    return row.index(eos) + 1 if eos in row else len(row)


def side_generate(tmp: Path, n_tokens: int, fixed: bool) -> dict:
    """Batched ``model.generate`` over the same 64 prompts, in the same batches of 32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp / "fp32", padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(tmp / "fp32").eval()
    kw = hf_kwargs(tok, n_tokens, fixed)
    prompts = requests(tmp)

    def run(batch: list[str]) -> int:
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, **kw)
        width = enc["input_ids"].shape[1]
        return sum(new_tokens(row, width, tok.eos_token_id) for row in out)

    run(prompts[:2])  # warm-up
    start = time.perf_counter()
    tokens = sum(run(prompts[i : i + 32]) for i in range(0, len(prompts), 32))
    seconds = time.perf_counter() - start
    assert not fixed or tokens == n_tokens * len(prompts), tokens
    return rates(len(prompts), tokens, seconds)


def side_pipeline(tmp: Path, n_tokens: int, fixed: bool, n_requests: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    tok = AutoTokenizer.from_pretrained(tmp / "fp32")
    model = AutoModelForCausalLM.from_pretrained(tmp / "fp32")
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    kw = {**hf_kwargs(tok, n_tokens, fixed), "return_full_text": False}
    prompts = requests(tmp)
    pipe(prompts[0], **kw)  # warm-up
    # Every other request, so reviews and lyrics are both in the sample.
    sample = prompts[:: max(1, len(prompts) // n_requests)][:n_requests]
    start = time.perf_counter()
    outs = [pipe(p, **kw) for p in sample]
    seconds = time.perf_counter() - start
    return {"per_minute": 60 * len(outs) / seconds, "seconds": seconds, "requests": len(outs)}


def side_load(tmp: Path, precision: str, n_tokens: int, fixed: bool) -> dict:
    from linernotes.model.backends import LocalBackend, PromptText
    from linernotes.model.checkpoint import load_checkpoint
    from linernotes.model.config import Sampling

    start = time.perf_counter()
    loaded = load_checkpoint(tmp / precision, precision, "cpu")
    load_s = time.perf_counter() - start
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    if fixed:
        fixed_length(backend)
    prompts = [PromptText(p) for p in requests(tmp)[::4]]  # 16: reviews and lyrics alike
    params = [Sampling(max_new_tokens=n_tokens, seed=i) for i in range(16)]
    backend.complete(prompts[:1], params[:1])
    start = time.perf_counter()
    tokens16 = sum(o.tokens for o in backend.complete(prompts, params))
    gen16 = time.perf_counter() - start
    singles = []
    for i in range(3):  # one request alone: what a cache miss costs per token
        start = time.perf_counter()
        (out,) = backend.complete(prompts[i : i + 1], params[i : i + 1])
        singles.append(out.tokens / (time.perf_counter() - start))
    return {
        "load_s": load_s,
        "footprint_mb": loaded.model.get_memory_footprint() / 2**20,
        "gen16_s": gen16,
        "gen16_tokens_s": tokens16 / gen16,
        "single_tokens_per_s": statistics.median(singles),
    }


def side_memory(tmp: Path, calls: int) -> dict:
    """RSS across many small generate calls with a tiny model (the property, not the speed)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from linernotes.data.splits import read_split
    from linernotes.model.backends import LocalBackend, PromptText
    from linernotes.model.config import Sampling
    from linernotes.training.setup import train_tokenizer

    # A small corpus vocabulary: this checks our code for leaks, and a 49k vocabulary only slows it.
    tok = train_tokenizer([i.record.text for i in read_split(tmp / "data", "train")], 8192)
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=len(tok), eos_token_id=tok.eos_token_id)
    ).eval()
    backend = LocalBackend(model, tok)
    prompts = [PromptText(p) for p in requests(tmp)[:8]]

    def rss() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    marks = {}
    for i in range(calls):
        backend.complete(prompts, [Sampling(max_new_tokens=24, seed=i * 8 + j) for j in range(8)])
        if i + 1 in (calls // 10, calls):
            marks[i + 1] = rss()
    return {"rss_mb": marks}


def side_guard(tmp: Path) -> dict:
    from linernotes.data.splits import read_split
    from linernotes.model.copyguard import CopyGuard, build_index

    texts = [i.record.text for i in read_split(tmp / "data", "train")]
    start = time.perf_counter()
    guard = CopyGuard(build_index(texts))
    build_s = time.perf_counter() - start
    probe = [t[: len(t) // 2] + " and then something new entirely, nobody wrote this" for t in texts] * 5
    start = time.perf_counter()
    for t in probe:
        guard.check(t)
    per_text = (time.perf_counter() - start) / len(probe)
    words = sum(len(t.split()) for t in texts)
    return {
        "us_per_text": per_text * 1e6,
        "index_bytes": int(guard.index.nbytes),
        "train_words": words,
        "build_s": build_s,
        "ngrams": len(guard.index),
    }


def child(name: str, tmp: Path, a: argparse.Namespace) -> dict:
    if name == "ours":
        out = side_ours(tmp, a.tokens, a.fixed)
    elif name == "generate":
        out = side_generate(tmp, a.tokens, a.fixed)
    elif name == "pipeline":
        out = side_pipeline(tmp, a.tokens, a.fixed, a.pipeline_requests)
    elif name in ("int8", "fp32"):
        out = side_load(tmp, name, a.tokens, a.fixed)
    elif name == "memory":
        out = side_memory(tmp, a.calls)
    else:
        out = side_guard(tmp)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def run_side(name: str, tmp: Path, a: argparse.Namespace) -> dict:
    """One side in a fresh process (so memory figures and caches are its own)."""
    flags = [
        "--tokens",
        str(a.tokens),
        "--calls",
        str(a.calls),
        "--pipeline-requests",
        str(a.pipeline_requests),
    ]
    cmd = [
        sys.executable,
        __file__,
        "--side",
        name,
        "--tmp",
        str(tmp),
        *flags,
        *(["--fixed"] if a.fixed else []),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"bench side {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict], key: str) -> float:
    """The median of one figure over repeated runs of a side."""
    return statistics.median(r[key] for r in runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=200, help="new tokens at most per generation (the bot's)")
    p.add_argument("--fixed", action="store_true", help="every output exactly --tokens long (no stops)")
    p.add_argument("--rounds", type=int, default=3, help="alternating runs of ours and generate")
    p.add_argument("--pipeline-requests", type=int, default=8, help="requests for the per-call pipeline")
    p.add_argument("--calls", type=int, default=2000, help="generate calls for the memory check")
    p.add_argument(
        "--run", help="a fine-tuned training run to export (default: the demo's, else trained here)"
    )
    p.add_argument("--work", default=str(REPO / ".linernotes" / "bench" / "generate"))
    p.add_argument("--side", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.side:
        import warnings

        warnings.filterwarnings("ignore")
        print(json.dumps(child(a.side, Path(a.tmp), a)))
        return
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        run = training_run(a.run, Path(a.work))
        build_checkpoints(run, tmp)
        runs: dict[str, list[dict]] = {"ours": [], "generate": [], "int8": [], "fp32": []}
        for _ in range(a.rounds):  # A B A B: a busy machine slows both alike
            for name in runs:
                runs[name].append(run_side(name, tmp, a))
        r = {name: run_side(name, tmp, a) for name in ("pipeline", "guard", "memory")}
    report(runs, r, a, run)


def report(runs: dict[str, list[dict]], r: dict[str, dict], a: argparse.Namespace, run: Path) -> None:
    """Print every figure, then the RESULT line."""
    ours, gen, pipe = (
        median_of(runs["ours"], "per_minute"),
        median_of(runs["generate"], "per_minute"),
        r["pipeline"],
    )
    length = f"exactly {a.tokens}" if a.fixed else f"natural stops, at most {a.tokens}"
    print(f"{BASE} (pretrained, 134.5M) fine-tuned ({run}), CPU, fp32")
    print(f"64 mixed requests, {length} new tokens; medians of {a.rounds} alternating runs")
    for name, label in (
        ("ours", "ours (batches of 32, KV cache):  "),
        ("generate", "model.generate (batches of 32):  "),
    ):
        print(
            f"{label} {median_of(runs[name], 'per_minute'):7.1f} generations/min, "
            f"{median_of(runs[name], 'tokens_s'):6.1f} new tokens/s, peak RSS {median_of(runs[name], 'peak_rss_mb'):.0f} MB"
        )
    print(
        f"pipeline('text-generation') per call: {pipe['per_minute']:7.1f} generations/min ({pipe['requests']} requests)"
    )
    for prec in ("int8", "fp32"):
        print(
            f"{prec} checkpoint on CPU: load {median_of(runs[prec], 'load_s'):.1f} s, weights "
            f"{median_of(runs[prec], 'footprint_mb'):.0f} MB, peak RSS {median_of(runs[prec], 'peak_rss_mb'):.0f} MB, "
            f"16 generations {median_of(runs[prec], 'gen16_s'):.1f} s ({median_of(runs[prec], 'gen16_tokens_s'):.1f} "
            f"tokens/s), one request alone {median_of(runs[prec], 'single_tokens_per_s'):.1f} tokens/s"
        )
    # Texts end where they end, so the precisions compare by tokens/s, not by time per 16 texts.
    speed = median_of(runs["int8"], "gen16_tokens_s") / median_of(runs["fp32"], "gen16_tokens_s")
    print(f"int8 against fp32 on this CPU: {speed:.2f}x the fp32 speed in a batch of 16")
    g = r["guard"]
    print(
        f"copy guard: {g['us_per_text']:.0f} us per text; index {g['index_bytes'] / 1024:.0f} KiB for "
        f"{g['train_words']:,} training words ({g['ngrams']:,} distinct 8-grams, built in {g['build_s']:.2f} s)"
    )
    (n1, m1), (n2, m2) = sorted((int(k), v) for k, v in r["memory"]["rss_mb"].items())
    print(
        f"memory over generate calls (tiny model): RSS {m1:.0f} MB after {n1} calls, {m2:.0f} MB after {n2} calls"
    )
    print(f"ours vs pipeline per call: {ours / pipe['per_minute']:.1f}x")
    print(f"RESULT generate_vs_batched_generate {ours / gen:.2f}x target >= 2x")


if __name__ == "__main__":
    main()
