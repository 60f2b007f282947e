"""Training throughput: our trainer against the baselines a practitioner would pick, on two corpora.

Every side trains the GPT-2 small architecture (124M parameters, random init, GPT-2's vocabulary size)
with one BPE tokenizer trained on the corpus, on the same prepared training split, on this machine's
CPU, fp32:

- ours: ``linernotes`` packing: examples packed whole into 256-token blocks (best fit), each attending
  only to itself (block-diagonal mask), an over-long example split into chunks that repeat its header,
  LM head only on target positions; batch 4 blocks.
- padded: HF ``Trainer`` with every example padded or truncated to 128 tokens, batch 4 (the column this
  benchmark has always had).
- dynamic: HF ``Trainer`` padding each batch to its longest row (``DataCollatorWithPadding``), in the
  batches ``train_sampling_strategy="group_by_length"`` makes (``group_by_length=True`` before
  transformers 5), shuffled as whole batches so that a few timed steps sample the epoch fairly. Its rows
  are our own chunks of at most 256 tokens, the block size ours uses, not the model's 1,024-token
  context: so nothing is truncated, both sides learn exactly the same token sequences, and attention
  costs less per token than at 1,024 (the stronger baseline). Batch sized to ours' 1,024 token
  positions per step on average, so a fixed per-step cost (the optimizer) weighs the same on both.
- grouped: run_clm's ``group_texts``: each 1,000 examples (``datasets.map``'s default batch) concatenated
  and cut into 256-token blocks, the remainder dropped; examples attend to each other. Batch 4.

Useful tokens are the ones every side must learn: body and end-of-text tokens, each once. Headers are
conditioning (ours repeats them in every chunk and puts no loss on them), padding is waste. The HF
sides label every real token, by the attention mask: the end marker is also the pad token here, so
``DataCollatorForLanguageModeling`` would drop its loss.

The sides are timed interleaved: each runs in its own thread of one process, parked between steps, and
the main thread lets each take one optimizer step in turn (the order rotating every round), so a machine
that gets busier slows every side alike; only one side computes at a time. A step is timed from its go to
its end (collation, forward, backward, clipping, optimizer, schedule). Figures are medians over the timed
steps; per-step reports go to ``--dump FILE``. Peak memory is the whole process's (four models and
optimizers). Usage::

    python bench/train_throughput.py [--steps 12] [--warmup 3] [--corpora lyrics,long]

The lyrics corpus is ../shared/corpora/genius-lyrics-100artists (short sections; ``--lyrics`` names
another source, the bundled sample's lyrics when it is absent); the long one is
bench/corpora/long_reviews.csv (original album reviews of 800-1,500 words; ``--long``). Ends with
``RESULT train_speedup_vs_best_separate <x>x target >= 1.2x``: ours against the fastest baseline that
keeps examples separate and truncates nothing, on the corpus where that ratio is lowest.

``--lora135m [--recipe demo|server] [--variant NAME:field=value,...] [--profile SIDE]`` times the training
people wait for instead, a LoRA adapter on SmolLM2-135M (bench/lora135m.py); it ends with ``RESULT
lora135m_speedup <x>x target >= 2.0x`` (ours against today's recipe) after ours against HF ``Trainer``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import peak_rss_mb  # noqa: E402

GPT2_SMALL = {"n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257, "n_positions": 1024}
BLOCK, BATCH, PADDED_TO, MAP_BATCH = 256, 4, 128, 1000
SHARED = Path(os.environ.get("LINERNOTES_SHARED") or REPO.parent / "shared")
LYRICS = SHARED / "corpora" / "genius-lyrics-100artists" / "jsons"
LONG = REPO / "bench" / "corpora" / "long_reviews.csv"


@dataclass(frozen=True)
class Side:
    """How one side is labelled in the table."""

    label: str
    cross: str  # do examples attend to each other?


SIDES = {
    "ours": Side("ours: packed 4x256, block-diagonal", "no"),
    "padded": Side("HF Trainer: padded/truncated 4x128", "no"),
    "dynamic": Side("HF Trainer: dynamic padding, group_by_length", "no"),
    "grouped": Side("HF Trainer: run_clm group_texts 4x256", "yes"),
}


@dataclass
class Count:
    """Tokens in one optimizer step."""

    useful: int  # body and end tokens: what every side must learn
    real: int  # all non-padding tokens (headers included)
    positions: int  # token positions computed (rows x width)


Row = dict[str, Any]  # {"input_ids": [...], "useful": int}


# --- one side: a thread that takes one optimizer step each time the main thread lets it ----------------


class Gate:
    """Parks one side's thread between steps; the main thread lets it take one step at a time."""

    def __init__(self, threads: int | None = None) -> None:
        self.go, self.parked = threading.Event(), threading.Event()
        self.reports: list[dict[str, float]] = []
        self.started = 0.0
        self.error: BaseException | None = None
        self.threads = threads  # torch threads for this side's steps (None: leave them as they are)

    def wait(self) -> None:
        """(side) Park until the main thread says go; the step's clock starts then."""
        self.parked.set()
        self.go.wait()
        self.go.clear()
        if self.threads:  # set from the side's own thread: OpenMP's thread count is per calling thread
            import torch

            torch.set_num_threads(self.threads)
        self.started = time.perf_counter()

    def report(self, count: Count) -> None:
        """(side) Record the finished step's time and tokens."""
        self.reports.append({"seconds": time.perf_counter() - self.started, **asdict(count)})

    def run(self, train: Callable[[], Any]) -> None:
        """(side) The thread's body: train, keeping any error for the main thread."""
        try:
            train()
        except BaseException as e:  # re-raised by the main thread
            self.error = e
        finally:
            self.parked.set()  # never leave the main thread waiting

    def step(self) -> None:
        """(main) Let the side take one step and wait until it parks again."""
        self.parked.wait()
        self._check()
        self.parked.clear()
        self.go.set()
        self.parked.wait()
        self._check()

    def release(self) -> None:
        """(main) Let the side finish its run after its last step."""
        self.parked.wait()
        self._check()
        self.parked.clear()
        self.go.set()

    def _check(self) -> None:
        """(main) Re-raise a side's failure here."""
        if self.error is not None:
            raise RuntimeError("a side failed") from self.error


def tokenizer_for(data: Path, tmp: Path) -> Path:
    """One tokenizer every side uses: byte-level BPE trained on the training split."""
    from linernotes.data.splits import read_split
    from linernotes.training.setup import train_tokenizer

    path = tmp / "tokenizer"
    if not path.exists():
        tok = train_tokenizer([i.record.text for i in read_split(data, "train")], 8192)
        tok.save_pretrained(path)
    return path


def model(tok_len: int, n_layer: int):
    """GPT-2 small, random weights, the same on every side."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    vocab = max(GPT2_SMALL["vocab_size"], tok_len)
    return GPT2LMHeadModel(GPT2Config(**{**GPT2_SMALL, "vocab_size": vocab, "n_layer": n_layer}))


def encoded(data: Path, tmp: Path):
    """The tokenizer and the training split encoded as our packer sees it (header, body)."""
    from transformers import AutoTokenizer

    from linernotes.data.splits import read_split
    from linernotes.training.packing import encode

    tok = AutoTokenizer.from_pretrained(tokenizer_for(data, tmp))
    tok.pad_token = tok.eos_token
    return tok, encode(tok, [i.record for i in read_split(data, "train")])


def block_count(blocks: list, block_size: int = BLOCK) -> Count:
    """Tokens in a micro-batch of our packed blocks."""
    useful = sum(len(ids) - n_head for block in blocks for ids, n_head in block)
    real = sum(len(ids) for block in blocks for ids, _ in block)
    return Count(useful, real, len(blocks) * block_size)


def run_ours(data: Path, tmp: Path, steps: int, n_layer: int, gate: Gate) -> tuple[dict, Callable]:
    """Our trainer as `linernotes train` runs it, with the bench's model and tokenizer."""
    import linernotes.training.setup as setup
    from linernotes.training.config import TrainConfig

    tok, _ = encoded(data, tmp)
    # Same model and tokenizer as the other sides: bypass building a fresh small model.
    setup.build = lambda config, texts: (model(len(tok), n_layer), tok)
    config = TrainConfig(
        data=str(data),
        out=str(tmp / "ours"),
        base="bench",
        steps=steps,
        batch_size=BATCH,
        block_size=BLOCK,
        eval_every=10_000,
        save_every=10_000,
        progress=False,
        precision="fp32",
    )
    return gated_ours(config, gate)


def gated_ours(config, gate: Gate, tune: Callable[[Any], None] | None = None) -> tuple[dict, Callable]:
    """Our trainer on ``config``, parked by ``gate`` between steps, each step reporting its tokens;
    ``tune(trainer)`` adjusts it first (bench/lora135m.py's autocast)."""
    from linernotes.training.loop import Trainer

    counts: list[Count] = []

    def on_step(progress, loss: float) -> None:
        gate.report(Count(*(sum(getattr(c, f) for c in counts) for f in ("useful", "real", "positions"))))
        counts.clear()
        gate.wait()  # also after the last step: the run's wind-down must not overlap another side's step

    trainer = Trainer(config, on_step=on_step)
    trainer.val_blocks = []  # throughput only: no validation (and no step-0 validation pass)
    if tune:
        tune(trainer)
    forward = trainer._forward

    def counted(blocks: list):
        counts.append(block_count(blocks, config.block_size))
        return forward(blocks)

    trainer._forward = counted  # the loop reports tokens with headers; count useful ones per micro-batch
    # Throughput only: skip the training state and weights the run would write after its last step.
    trainer._save_state = lambda: None
    trainer._finish = lambda status: {}
    batch = f"{config.batch_size}x{config.block_size}"
    info = {"examples": len(trainer.data.train), "truncated": 0, "batch": batch}
    return info, lambda: (gate.wait(), trainer.train())


def padded_rows(examples: list, eos: int) -> tuple[list[Row], int]:
    """Today's column: each example cut to its first 128 tokens (padded later by the collator)."""
    rows, truncated = [], 0
    for ex in examples:
        ids = ex.header + ex.body + [eos]
        truncated += len(ids) > PADDED_TO
        kept = ids[:PADDED_TO]
        rows.append({"input_ids": kept, "useful": max(len(kept) - len(ex.header), 0)})
    return rows, truncated


def chunk_rows(examples: list, eos: int) -> tuple[list[Row], int]:
    """Each example as our packer chunks it (at most 256 tokens, header repeated): nothing truncated."""
    from linernotes.training.packing import segments

    rows = [
        {"input_ids": ids, "useful": len(ids) - n_head}
        for ex in examples
        for ids, n_head in segments(ex, BLOCK, eos)
    ]
    return rows, 0


def grouped_rows(examples: list, eos: int) -> tuple[list[Row], int]:
    """run_clm's group_texts over each 1,000 examples; counts the examples its dropped remainders cut."""
    rows, truncated = [], 0
    for start in range(0, len(examples), MAP_BATCH):
        ids: list[int] = []
        useful: list[int] = []  # 1 where the token is body or end, 0 on headers
        owner: list[int] = []
        for i, ex in enumerate(examples[start : start + MAP_BATCH]):
            seq = ex.header + ex.body + [eos]
            ids += seq
            useful += [0] * len(ex.header) + [1] * (len(seq) - len(ex.header))
            owner += [i] * len(seq)
        cut = len(ids) // BLOCK * BLOCK
        truncated += len(set(owner[cut:]))
        rows += [
            {"input_ids": ids[a : a + BLOCK], "useful": sum(useful[a : a + BLOCK])}
            for a in range(0, cut, BLOCK)
        ]
    return rows, truncated


class Collate:
    """Pads a batch (to ``width``, or to its longest row), labels every real token, counts its tokens."""

    def __init__(self, tok, width: int | None, counts: deque[Count]) -> None:
        from transformers import DataCollatorWithPadding

        padding = "max_length" if width else "longest"
        self.pad = DataCollatorWithPadding(tok, padding=padding, max_length=width)
        self.counts = counts

    def __call__(self, rows: list[Row]) -> dict:
        """The batch the model gets."""
        batch = self.pad([{"input_ids": r["input_ids"]} for r in rows])
        mask = batch["attention_mask"]
        batch["labels"] = batch["input_ids"].masked_fill(mask == 0, -100)
        self.counts.append(Count(sum(r["useful"] for r in rows), int(mask.sum()), mask.numel()))
        return batch


def length_grouped(rows: list[Row], batch: int) -> list[Row]:
    """The rows in group_by_length's batches (transformers' own grouping), the batches in shuffled order.

    Its sampler runs each mega-batch of 50 batches from longest to shortest, so the few steps timed here
    would all come from the long end; shuffling whole batches keeps what each step holds and makes the
    timed steps a fair sample of the epoch. The last, partial batch stays last.
    """
    import random

    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    order = get_length_grouped_indices(
        [len(r["input_ids"]) for r in rows], batch, generator=torch.Generator().manual_seed(0)
    )
    batches = [order[i : i + batch] for i in range(0, len(order), batch)]
    tail = [batches.pop()] if len(batches[-1]) < batch else []
    random.Random(0).shuffle(batches)
    return [rows[i] for b in batches + tail for i in b]


def hf_recipe(name: str, examples: list, eos: int) -> tuple[list[Row], int, int, int | None, str]:
    """(rows, truncated, batch size, pad width, sampling) for one HF side."""
    if name == "padded":
        rows, truncated = padded_rows(examples, eos)
        return rows, truncated, BATCH, PADDED_TO, "random"
    if name == "dynamic":
        rows, truncated = chunk_rows(examples, eos)
        batch = max(1, round(BATCH * BLOCK / (sum(len(r["input_ids"]) for r in rows) / len(rows))))
        return length_grouped(rows, batch), truncated, batch, None, "sequential"
    rows, truncated = grouped_rows(examples, eos)
    return rows, truncated, BATCH, None, "random"


def run_hf(name: str, data: Path, tmp: Path, steps: int, n_layer: int, gate: Gate) -> tuple[dict, Callable]:
    """One HF ``Trainer`` side, parked by a callback between steps."""
    import torch

    tok, examples = encoded(data, tmp)
    rows, truncated, batch, width, sampling = hf_recipe(name, examples, tok.eos_token_id)
    # Collation order is training order (accelerate prefetches one batch ahead), so counts are a FIFO.
    counts: deque[Count] = deque()
    torch.manual_seed(0)
    run = gated_trainer(
        model(len(tok), n_layer), rows, Collate(tok, width, counts), counts, gate,
        output_dir=str(tmp / name), per_device_train_batch_size=batch, max_steps=steps,
        learning_rate=5e-4, train_sampling_strategy=sampling,
    )  # fmt: skip
    widths = {len(r["input_ids"]) for r in rows}
    shape = f"{batch}x{width or max(widths)}" if width or len(widths) == 1 else f"{batch}x<={max(widths)}"
    info = {"examples": len(examples), "truncated": truncated, "batch": shape}
    return info, run


def gated_trainer(model, rows: list, collate, counts: deque, gate: Gate, **settings: Any) -> Callable:
    """An HF ``Trainer``'s run on ``rows``, parked by ``gate`` between steps (each reported with its
    ``counts`` entry), fp32 on the CPU; ``settings``: the side's own ``TrainingArguments``."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Park(TrainerCallback):
        """Parks the HF run between steps and reports each one."""

        def on_train_begin(self, args, state, control, **kw):
            """Wait for the first turn."""
            gate.wait()

        def on_step_end(self, args, state, control, **kw):
            """Report the step, then wait for the next turn."""
            gate.report(counts.popleft())
            gate.wait()  # also after the last step: the run's wind-down must not overlap another side's step

    args = TrainingArguments(
        remove_unused_columns=False,  # the rows carry their useful-token count to the collator
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
        **settings,
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate, callbacks=[Park()])
    return trainer.train


def build(name: str, data: Path, tmp: Path, steps: int, n_layer: int, gate: Gate) -> tuple[dict, Callable]:
    """One side set up: (what it trains on, its training run)."""
    if name == "ours":
        return run_ours(data, tmp, steps, n_layer, gate)
    return run_hf(name, data, tmp, steps, n_layer, gate)


def interleave(data: Path, tmp: Path, rounds: int, n_layer: int) -> dict[str, Any]:
    """All four sides in threads of this process, one step per side per round, the order rotating.

    One process, so memory freed by one side's step is reused by the next (separate processes each kept
    their own heap: four copies did not fit in 23 GB); only one side runs at a time.
    """
    gates = {name: Gate() for name in SIDES}
    built = {name: build(name, data, tmp, rounds, n_layer, gates[name]) for name in SIDES}
    return run_interleaved(gates, built, rounds)


def run_interleaved(
    gates: dict[str, Gate], built: dict[str, tuple[dict, Callable]], rounds: int
) -> dict[str, Any]:
    """Built sides (info, run) in threads, one step per side per round, the order rotating each round."""
    threads = {n: threading.Thread(target=gates[n].run, args=(built[n][1],), daemon=True) for n in built}
    for thread in threads.values():
        thread.start()
    names = list(built)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            gates[name].step()
    for name in names:  # one at a time, so no side's wind-down overlaps another's
        gates[name].release()
        threads[name].join()
        gates[name]._check()
    sides = {n: {**built[n][0], "steps": gates[n].reports} for n in names}
    return {"sides": sides, "peak_rss_mb": peak_rss_mb()}


def summary(reports: list[dict], warmup: int) -> dict[str, float]:
    """Medians over the timed steps: useful tokens/s, seconds per step, useful share of positions; and the
    whole run's useful tokens/s."""
    timed = reports[warmup:]
    return {
        "useful_per_s": statistics.median(r["useful"] / r["seconds"] for r in timed),
        "real_per_s": statistics.median(r["real"] / r["seconds"] for r in timed),
        "seconds": statistics.median(r["seconds"] for r in timed),
        "useful_share": sum(r["useful"] for r in timed) / sum(r["positions"] for r in timed),
        # Every step, the first ones too: what a whole run costs (a cache filled on the first pass pays later).
        "job_useful_per_s": sum(r["useful"] for r in reports) / sum(r["seconds"] for r in reports),
    }


def measure(data: Path, tmp: Path, a: argparse.Namespace) -> tuple[dict[str, dict], float]:
    """Run the interleaved sides in a fresh process; (figures per side, that process's peak RSS in MB)."""
    cmd = [sys.executable, __file__, "--measure", "--data", str(data), "--tmp", str(tmp)]
    cmd += ["--steps", str(a.warmup + a.steps), "--n-layer", str(a.n_layer)]
    # One malloc arena: the side threads then share one heap instead of keeping one each.
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"measuring failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    sides = {n: {**out["sides"][n], **summary(out["sides"][n]["steps"], a.warmup)} for n in SIDES}
    return sides, out["peak_rss_mb"]


def corpus_line(name: str, source: Path, data: Path, tmp: Path) -> str:
    """What the corpus is: its training examples and their lengths in tokens."""
    _, examples = encoded(data, tmp)
    lengths = sorted(len(e.header) + len(e.body) + 1 for e in examples)
    over = {n: sum(x > n for x in lengths) for n in (PADDED_TO, BLOCK)}
    return (
        f"== {name} ({source}): {len(lengths):,} training examples, tokens with header and end: "
        f"median {statistics.median(lengths):.0f}, mean {statistics.fmean(lengths):.0f}, "
        f"max {lengths[-1]:,}; {over[PADDED_TO]:,} longer than {PADDED_TO}, {over[BLOCK]:,} longer than {BLOCK}"
    )


def table(results: dict[str, dict]) -> list[str]:
    """One line per side."""
    lines = [
        f"{'side':46} {'useful tok/s':>12} {'all tok/s':>9} {'s/step':>7} {'useful/pos':>10} "
        f"{'batch':>11} {'truncated':>15} {'cross-attn':>10}"
    ]
    for name, side in SIDES.items():
        r = results[name]
        lines.append(
            f"{side.label:46} {r['useful_per_s']:12.0f} {r['real_per_s']:9.0f} {r['seconds']:7.2f} "
            f"{r['useful_share']:10.0%} {r['batch']:>11} {r['truncated']:>6,} of {r['examples']:<6,} "
            f"{side.cross:>10}"
        )
    return lines


def best_separate(results: dict[str, dict]) -> tuple[str, float] | None:
    """The fastest baseline that keeps examples separate and truncates nothing, and ours' speed-up on it."""
    fair = [n for n in SIDES if n != "ours" and SIDES[n].cross == "no" and results[n]["truncated"] == 0]
    if not fair:
        return None
    best = max(fair, key=lambda n: results[n]["useful_per_s"])
    return best, results["ours"]["useful_per_s"] / results[best]["useful_per_s"]


def prepared(source: Path, out: Path) -> Path:
    """``source`` prepared as `linernotes prepare` does it (default settings)."""
    from linernotes.data.config import DataConfig
    from linernotes.data.prepare import prepare

    prepare(DataConfig(sources=[str(source)], out=str(out)))
    return out


def corpora(a: argparse.Namespace) -> dict[str, Path]:
    """The corpora to measure, by name."""
    lyrics = Path(a.lyrics) if a.lyrics else LYRICS
    if not lyrics.exists():
        lyrics = REPO / "data" / "sample" / "lyrics"  # short sections too, when the shared corpus is absent
    chosen = {"lyrics": lyrics, "long": Path(a.long)}
    return {k: v for k, v in chosen.items() if k in a.corpora.split(",")}


def lora_flags(p: argparse.ArgumentParser) -> None:
    """The ``--lora135m`` benchmark's flags (bench/lora135m.py)."""
    p.add_argument("--lora135m", action="store_true", help="LoRA on SmolLM2-135M instead (bench/lora135m.py)")
    p.add_argument("--recipe", default="demo", choices=["demo", "server"], help="--lora135m: which recipe")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="--lora135m: NAME:field=value,... one more side (TrainConfig fields; ours:... changes ours)",
    )
    p.add_argument(
        "--base", default="smollm2-135m", help="--lora135m: the base (a small one: a wiring check)"
    )
    p.add_argument("--no-hf", action="store_true", help="--lora135m: leave out the HF Trainer side")
    p.add_argument(
        "--profile", metavar="SIDE", help="--lora135m: profile one step of SIDE (today, ours, ...)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=12, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per side first")
    p.add_argument("--corpora", default="lyrics,long", help="which corpora, comma-separated")
    p.add_argument("--lyrics", help="short-section lyrics source (default: the shared Genius sample)")
    p.add_argument("--long", default=str(LONG), help="long-review source")
    p.add_argument("--n-layer", type=int, default=12, help="fewer layers for a quick wiring check")
    p.add_argument("--dump", help="also write every step's report and the figures to this JSON file")
    lora_flags(p)
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if a.lora135m:
        import lora135m

        lora135m.main(a)
        return
    if a.measure:  # the process that runs the sides: its figures as JSON on the last line
        print(json.dumps(interleave(Path(a.data), Path(a.tmp), a.steps, a.n_layer)))
        return
    model_name = "GPT-2 small" if a.n_layer == 12 else f"GPT-2 small widths, {a.n_layer} layers"
    print(
        f"{model_name}, fp32, CPU, sides interleaved step by step; medians of {a.steps} timed steps "
        f"after {a.warmup}; load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        "useful = body and end tokens, each once; all = every non-padding token (headers too); "
        "useful/pos = useful share of the positions computed"
    )
    ratios, dump = [], {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name, source in corpora(a).items():
            tmp = Path(tmp_dir) / name
            tmp.mkdir()
            data = prepared(source, tmp / "prepared")
            tokenizer_for(data, tmp)
            print(corpus_line(name, source, data, tmp), flush=True)
            results, peak = measure(data, tmp, a)
            dump[name] = results
            print("\n".join(table(results)))
            print(f"peak RSS of the process running all four sides: {peak / 1024:.1f} GB")
            best = best_separate(results)
            if best:
                ratios.append(best[1])
                print(f"ours vs best separate baseline with nothing truncated ({best[0]}): {best[1]:.2f}x")
            print(flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at end")
    if a.dump:
        Path(a.dump).write_text(json.dumps(dump, indent=1) + "\n")
    print(f"RESULT train_speedup_vs_best_separate {min(ratios):.2f}x target >= 1.2x")


if __name__ == "__main__":
    main()
