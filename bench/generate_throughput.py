"""Generation throughput for cache warm-up: our batched generator against one pipeline call per request.

GPT-2 small architecture (124M, random weights, GPT-2's vocabulary size), this machine's CPU, fp32,
64 mixed requests (reviews of several genres and scores, lyrics parts), every output fixed at
``--tokens`` new tokens so both sides do the same work:

- ours: ``model.backends.LocalBackend`` (left-padded batches of 32, KV cache, per-request sampling);
- common way: ``transformers.pipeline("text-generation")`` called once per request.

Also measured, each in a fresh process: load time and memory footprint of the same weights saved as
an int8 (bitsandbytes) and an fp32 checkpoint, and their generation speed on CPU; the copy guard's
cost per text; process memory over many generate calls (it must stay flat).

Ends with ``RESULT generate_speedup <x> target >= 5x``.
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

GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "n_positions": 1024}
GENRES = ["Rock", "Metal", "Jazz", "Rap", "Electronic", "Pop/R&B", "Folk/Country", "Experimental"]
PARTS = ["verse", "chorus", "bridge", "pre-chorus", "outro", "intro", "hook", "refrain"]


def requests() -> list[str]:
    """64 mixed prompts: 32 reviews (genre x score), 32 lyrics parts."""
    from data.format import prompt

    reviews = [prompt("review", genre=g, score=s) for g in GENRES for s in (2.0, 5.5, 7.5, 9.0)]
    lyrics = [
        prompt("lyrics", part=p, artist=a)
        for p in PARTS
        for a in ("Iron Chapel", "Neon Kites", "June Bell", "Dusty Harlan")
    ]
    return reviews + lyrics


def build_checkpoints(tmp: Path) -> None:
    """Random GPT-2 small with a corpus BPE tokenizer, saved as fp32 and int8 checkpoints."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from data.config import DataConfig
    from data.prepare import prepare
    from data.splits import read_split
    from model.card import Card
    from model.checkpoint import save_checkpoint
    from training.setup import train_tokenizer

    prepare(DataConfig(sources=[str(REPO / "data" / "sample")], out=str(tmp / "data")))
    tok = train_tokenizer([i.record.text for i in read_split(tmp / "data", "train")], 8192)
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=50257, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, **GPT2_SMALL
    )
    model = GPT2LMHeadModel(cfg)
    for precision in ("fp32", "int8"):
        card = Card(
            model_id=f"bench-{precision}",
            base_model="scratch:gpt2-small",
            precision=precision,
            architecture=GPT2_SMALL,
            tokenizer={},
            tags={
                "review": {"genre": dict.fromkeys(GENRES, 1), "score_range": [0.0, 10.0]},
                "lyrics": {"part": dict.fromkeys(PARTS, 1)},
            },
        )
        save_checkpoint(tmp / precision, model, tok, card, precision)


def fixed_length(backend) -> None:
    """Make every output exactly max_new_tokens long: no end marker, no header stop."""
    backend.eos = -1
    backend.token_text = [""] * len(backend.token_text)


def side_ours(tmp: Path, n_tokens: int) -> dict:
    from model.backends import LocalBackend, PromptText
    from model.checkpoint import load_checkpoint
    from model.sampling import Sampling

    loaded = load_checkpoint(tmp / "fp32", "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    fixed_length(backend)
    prompts = [PromptText(p) for p in requests()]
    params = [Sampling(max_new_tokens=n_tokens, seed=i) for i in range(len(prompts))]
    backend.complete(prompts[:2], params[:2])  # warm-up
    start = time.perf_counter()
    outs = []
    for i in range(0, len(prompts), 32):
        outs += backend.complete(prompts[i : i + 32], params[i : i + 32])
    seconds = time.perf_counter() - start
    assert all(o.tokens == n_tokens for o in outs), [o.tokens for o in outs]
    return {"per_minute": 60 * len(outs) / seconds, "seconds": seconds}


def side_pipeline(tmp: Path, n_tokens: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    tok = AutoTokenizer.from_pretrained(tmp / "fp32")
    model = AutoModelForCausalLM.from_pretrained(tmp / "fp32")
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device="cpu")
    kw = {
        "max_new_tokens": n_tokens,
        "min_new_tokens": n_tokens,
        "do_sample": True,
        "top_k": 50,
        "top_p": 0.95,
        "temperature": 0.9,
        "repetition_penalty": 1.1,
        "pad_token_id": tok.eos_token_id,
        "return_full_text": False,
    }
    pipe(requests()[0], **kw)  # warm-up
    start = time.perf_counter()
    outs = [pipe(p, **kw) for p in requests()]
    seconds = time.perf_counter() - start
    return {"per_minute": 60 * len(outs) / seconds, "seconds": seconds}


def side_load(tmp: Path, precision: str, n_tokens: int) -> dict:
    from model.backends import LocalBackend, PromptText
    from model.checkpoint import load_checkpoint
    from model.sampling import Sampling

    start = time.perf_counter()
    loaded = load_checkpoint(tmp / precision, precision, "cpu")
    load_s = time.perf_counter() - start
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    fixed_length(backend)
    prompts = [PromptText(p) for p in requests()[:16]]
    params = [Sampling(max_new_tokens=n_tokens, seed=i) for i in range(16)]
    backend.complete(prompts[:1], params[:1])
    start = time.perf_counter()
    backend.complete(prompts, params)
    return {
        "load_s": load_s,
        "footprint_mb": loaded.model.get_memory_footprint() / 2**20,
        "gen16_s": time.perf_counter() - start,
    }


def side_memory(tmp: Path, calls: int) -> dict:
    """RSS across many small generate calls with a tiny model (the property, not the speed)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from model.backends import LocalBackend, PromptText
    from model.checkpoint import load_checkpoint
    from model.sampling import Sampling

    tok = load_checkpoint(tmp / "fp32", "fp32", "cpu").tokenizer
    model = GPT2LMHeadModel(
        GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=len(tok), eos_token_id=tok.eos_token_id)
    ).eval()
    backend = LocalBackend(model, tok)
    prompts = [PromptText(p) for p in requests()[:8]]

    def rss() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    marks = {}
    for i in range(calls):
        backend.complete(prompts, [Sampling(max_new_tokens=24, seed=i * 8 + j) for j in range(8)])
        if i + 1 in (calls // 10, calls):
            marks[i + 1] = rss()
    return {"rss_mb": marks}


def side_guard(tmp: Path) -> dict:
    from data.splits import read_split
    from model.copyguard import CopyGuard, build_index

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


def child(name: str, tmp: Path, args: argparse.Namespace) -> dict:
    if name == "ours":
        out = side_ours(tmp, args.tokens)
    elif name == "pipeline":
        out = side_pipeline(tmp, args.tokens)
    elif name in ("int8", "fp32"):
        out = side_load(tmp, name, args.tokens)
    elif name == "memory":
        out = side_memory(tmp, args.calls)
    else:
        out = side_guard(tmp)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=32, help="new tokens per generation (fixed)")
    p.add_argument("--calls", type=int, default=2000, help="generate calls for the memory check")
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
        build_checkpoints(tmp)
        r = {}
        for name in ("ours", "pipeline", "int8", "fp32", "guard", "memory"):
            cmd = [
                sys.executable,
                __file__,
                "--side",
                name,
                "--tmp",
                str(tmp),
                "--tokens",
                str(a.tokens),
                "--calls",
                str(a.calls),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"bench side {name} failed:\n{proc.stderr[-3000:]}")
            r[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    ours, pipe = r["ours"], r["pipeline"]
    print(f"GPT-2 small architecture (random weights), CPU fp32, 64 mixed requests x {a.tokens} new tokens")
    print(
        f"ours (batches of 32, KV cache):        {ours['per_minute']:7.1f} generations/min "
        f"({ours['seconds']:.1f} s), peak RSS {ours['peak_rss_mb']:.0f} MB"
    )
    print(
        f"pipeline('text-generation') per call:  {pipe['per_minute']:7.1f} generations/min "
        f"({pipe['seconds']:.1f} s), peak RSS {pipe['peak_rss_mb']:.0f} MB"
    )
    for prec in ("int8", "fp32"):
        x = r[prec]
        print(
            f"{prec} checkpoint on CPU: load {x['load_s']:.2f} s, weights {x['footprint_mb']:.0f} MB, "
            f"peak RSS {x['peak_rss_mb']:.0f} MB, 16 generations {x['gen16_s']:.1f} s"
        )
    g = r["guard"]
    print(
        f"copy guard: {g['us_per_text']:.0f} us per text; index {g['index_bytes'] / 1024:.0f} KiB for "
        f"{g['train_words']:,} training words ({g['ngrams']:,} distinct 8-grams, built in {g['build_s']:.2f} s)"
    )
    marks = r["memory"]["rss_mb"]
    (n1, m1), (n2, m2) = sorted((int(k), v) for k, v in marks.items())
    print(
        f"memory over generate calls (tiny model): RSS {m1:.0f} MB after {n1} calls, {m2:.0f} MB after {n2} calls"
    )
    print(f"RESULT generate_speedup {ours['per_minute'] / pipe['per_minute']:.2f}x target >= 5x")


if __name__ == "__main__":
    main()
