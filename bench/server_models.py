"""Server models: from an upload to the first answer by the server's own adapter, how much that adapter
is the server's, and many adapters on one base.

The real bot (``create_bot``) runs against SimCord on the demo's checkpoint (``--checkpoint``; ``make
demo`` builds it). Three servers' managers each upload one artist's ten songs (Genius JSON from
../shared/corpora/genius-lyrics-100artists: about 60-70 sections after preparing) with ``/model train``;
the adapters train one after another in the bot's child process. Measured in one run:

- turnaround: seconds from the first server's ``/model train`` to its first ``/lyrics`` answered by the
  new adapter, and the share of it spent in the training child (target <= 120 s);
- style: for each held-out section of each upload (its validation split: songs the adapter never saw),
  its body's likelihood under each server's adapter and under the bot's own model, with the same header
  (part only, no artist): the share where the uploading server's adapter ranks first (target >= 80%);
- 20 adapters attached to one generator (the three trained ones, each loaded again under further names:
  every load holds its own weights): resident memory per adapter (target <= 10 MB), and 64 mixed
  requests spread over the 20 against 64 requests to one adapter, rounds interleaved (A B A B), medians
  (target: mixed within 1.3x).

With ``--sweep SETTINGS ...`` (JSON objects of recipe settings, ``{}`` for the recipe as it is) it runs
only the style test, once per setting, on adapters trained by the bot's training function
(``training.server.train_adapter``) outside the bot, with those settings replaced; each upload is trained
with every setting in turn (A B A B) and each training is timed.

Usage::

    python bench/server_models.py [--checkpoint .linernotes/demo/checkpoint] [--rounds 3]
    python bench/server_models.py --sweep '{}' '{"lr": 5e-4}' '{"tag_dropout": 0.5}'

Ends with ``RESULT upload_to_answer_s <s> target <= 120`` (issue #26; a sweep: ``RESULT style_best ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("LINERNOTES_SHARED") or REPO.parent / "shared")
SONGS = SHARED / "corpora" / "genius-lyrics-100artists" / "jsons"
ARTISTS = ("ABBA", "Ed_Sheeran", "DJ_Khaled")  # three distinct styles, ~60-70 sections each
TURNAROUND_TARGET, STYLE_TARGET, MEMORY_TARGET, MIXED_TARGET = 120.0, 0.8, 10.0, 1.3
ADAPTERS, REQUESTS = 20, 64
STEPS = 48  # one-token steps per row in the forward-only comparison


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# --- through the bot --------------------------------------------------------------------------


async def through_the_bot(checkpoint: Path, tmp: Path) -> dict:
    """Three uploads through /model train; the first one timed to its first /lyrics answer."""
    import discord
    import simcord

    from linernotes.bot import create_bot
    from linernotes.bot.embeds import generation_id

    bot = create_bot(
        checkpoint, tmp / "bench.sqlite3", warm_interval=0, sync_interval=0, cooldown=0, shard_count=1,
        models_dir=str(tmp / "models"), models_per_server=1,
    )  # fmt: skip
    out: dict = {"servers": []}
    async with simcord.run(bot, settle_timeout=1800, check_errors=False) as env:
        for n, artist in enumerate(ARTISTS):
            guild = env.create_guild(f"server {n}")
            channel = guild.create_text_channel("general")
            role = guild.create_role("managers", permissions=discord.Permissions(manage_guild=True))
            manager = guild.add_member(env.create_user(f"manager{n}"), roles=[role])
            upload = (f"{artist}.json", (SONGS / f"{artist}.json").read_bytes())
            started = time.perf_counter()
            trained = await manager.slash(channel, "model train", name=artist, file=upload)
            ready = time.perf_counter() - started
            answer = await manager.slash(channel, "lyrics", part="chorus")
            seconds = time.perf_counter() - started
            ((model, _, _),) = await bot.server_models(guild.id)
            assert model.status == "ready", trained.response.content
            gen = await bot.generation(generation_id(answer.response.embeds[0]))
            assert gen is not None and gen.model_id == model.model_id, "the answer must come from the adapter"
            out["servers"].append(
                {
                    "artist": artist,
                    "model": model,
                    "seconds": seconds,
                    "ready": ready,  # the model ready (trained, attached, its sample written)
                    "training": model.report["training"]["seconds"],
                    "message": trained.response.content,
                }
            )
    await bot.close()
    return out


# --- style: likelihood under each adapter -----------------------------------------------------


def body_nll(backend, header: str, body: str, adapter: str | None) -> float:
    """Mean negative log-likelihood of ``body`` (and its end) after ``header``, through one adapter
    (None: the bot's own model)."""
    import torch

    from linernotes.data.format import escape_body

    head = backend.tokenizer(header, add_special_tokens=False)["input_ids"]
    tail = backend.tokenizer(escape_body(body), add_special_tokens=False)["input_ids"] + [backend.eos]
    ids = torch.tensor([head + tail])
    with torch.inference_mode(), backend.lora.routed(backend.lora.slots([adapter])):
        logits = backend.model(input_ids=ids).logits[0, :-1].float()
    logp = torch.log_softmax(logits, dim=-1)[len(head) - 1 :]  # predictions of the body's tokens
    return -float(logp.gather(1, torch.tensor(tail)[:, None]).mean())


def style(checkpoint: Path, servers: list[dict]) -> dict:
    """Share of held-out sections whose own server's adapter gives them the highest likelihood."""
    from linernotes.data.format import header
    from linernotes.data.splits import read_split
    from linernotes.model.config import GenerateConfig
    from linernotes.model.generator import Generator

    gen = Generator.load(checkpoint, GenerateConfig())
    for s in servers:
        gen.attach(s["artist"], Path(s["model"].path) / "checkpoint")
    backend = gen.backend
    names: dict[str, str | None] = {**{a: a for a in gen.adapters}, "base": None}
    right = total = 0
    confusion: dict[str, dict[str, int]] = {}
    for s in servers:
        for item in read_split(Path(s["model"].path) / "prepared", "val"):
            head = header("lyrics", {"part": item.record.tags["part"]}, gen.card.rendering)
            scores = {name: body_nll(backend, head, item.record.text, a) for name, a in names.items()}
            best = min(scores, key=scores.__getitem__)
            confusion.setdefault(s["artist"], {}).setdefault(best, 0)
            confusion[s["artist"]][best] += 1
            right += best == s["artist"]
            total += 1
    return {"share": right / max(total, 1), "n": total, "confusion": confusion}


def sweep(checkpoint: Path, tmp: Path, settings: list[dict]) -> list[dict]:
    """The style test for each recipe setting: the three uploads trained as the bot's child trains them,
    the settings taken in turn for each upload (A B A B), each training timed."""
    from types import SimpleNamespace

    from linernotes.bot.uploads import prepare_upload
    from linernotes.training.server import train_adapter

    servers: list[list[dict]] = [[] for _ in settings]
    seconds: list[list[float]] = [[] for _ in settings]
    for artist in ARTISTS:
        for n, override in enumerate(settings):
            work = tmp / f"sweep{n}" / artist  # laid out as a bot's model: prepared/, checkpoint/
            prepare_upload(SONGS / f"{artist}.json", work / "prepared")
            rest = {k: v for k, v in override.items() if k != "max_steps"}  # the step cap is an argument
            started = time.perf_counter()
            train_adapter(
                work / "prepared", checkpoint, work, override.get("max_steps"), lambda _: None, **rest
            )
            seconds[n].append(time.perf_counter() - started)
            servers[n].append({"artist": artist, "model": SimpleNamespace(path=str(work))})
    out = []
    for override, trained, took in zip(settings, servers, seconds, strict=True):
        out.append({"settings": override, **style(checkpoint, trained), "seconds": took})
        taken = " / ".join(f"{s:.0f}" for s in took)
        print(
            f"{json.dumps(override)}: {out[-1]['share']:.0%} of {out[-1]['n']}; {out[-1]['confusion']}; "
            f"trained in {taken} s"
        )
    return out


# --- many adapters on one base ----------------------------------------------------------------


def many(checkpoint: Path, servers: list[dict], rounds: int) -> dict:
    """Memory of 20 attached adapters; 64 requests over all of them against 64 to one, interleaved."""
    from linernotes.model.config import GenerateConfig, Sampling
    from linernotes.model.generator import Generator, Request

    gen = Generator.load(checkpoint, GenerateConfig())
    paths = [Path(s["model"].path) / "checkpoint" for s in servers]
    before = rss_mb()
    for i in range(ADAPTERS):
        gen.attach(f"a{i}", paths[i % len(paths)])
    per_adapter = (rss_mb() - before) / ADAPTERS
    params = gen.backend.lora.nbytes
    parts = ("chorus", "verse", "bridge", "chorus")

    def batch(mixed: bool) -> list[Request]:
        return [
            Request(
                "lyrics",
                {"part": parts[i % 4]},
                sampling=Sampling(seed=i),
                model=f"a{i % ADAPTERS if mixed else 0}",
            )
            for i in range(REQUESTS)
        ]

    times: dict[str, list[float]] = {"single": [], "mixed": []}
    tokens: dict[str, list[int]] = {"single": [], "mixed": []}
    steps: dict[str, list[float]] = {"single": [], "mixed": []}
    for _ in range(rounds):
        for side in ("single", "mixed"):  # A B A B: a busy moment slows both sides alike
            started = time.perf_counter()
            results = gen.generate(batch(side == "mixed"))
            times[side].append(time.perf_counter() - started)
            tokens[side].append(sum(r.tokens for r in results))
            models = [r.model for r in batch(side == "mixed")]
            steps[side].append(step_seconds(gen.backend, models, STEPS))
    return {
        "per_adapter_mb": per_adapter,
        "lora_mb": params / 1e6 / ADAPTERS,
        "times": times,
        "tokens": tokens,
        "steps": steps,
    }


def step_seconds(backend, models: list[str | None], steps: int) -> float:
    """Seconds for one batch's prompt and ``steps`` one-token steps, a row per entry of ``models``, every
    row to the end: what the adapters cost, apart from how long each one's texts run."""
    import torch

    shape = (len(models), 24)  # a header and a seed line's worth of prompt
    ids = torch.randint(0, len(backend.tokenizer), shape, generator=torch.Generator().manual_seed(0))
    started = time.perf_counter()
    with torch.inference_mode(), backend.lora.routed(backend.lora.slots(models)):
        out = backend.model(input_ids=ids, use_cache=True)
        for _ in range(steps):
            token = out.logits[:, -1:].argmax(-1)  # (rows, 1)
            out = backend.model(input_ids=token, cache=out.cache, use_cache=True)
    return time.perf_counter() - started


# --- report -----------------------------------------------------------------------------------


def report(bot: dict, styled: dict, loaded: dict) -> None:
    """Every figure, then the RESULT line."""
    first = bot["servers"][0]
    for s in bot["servers"]:
        share = s["training"] / s["seconds"]
        print(
            f"{s['artist']}: upload -> first /lyrics by its adapter {s['seconds']:.0f} s "
            f"({s['training']:.0f} s, {share:.0%}, in the training child; ready at {s['ready']:.0f} s, "
            f"then the answer {s['seconds'] - s['ready']:.1f} s)"
        )
        print("   " + s["message"].replace("\n", "\n   "))
    print(
        f"style: own server's adapter ranks first on {styled['share']:.0%} of {styled['n']} held-out sections "
        f"(target >= {STYLE_TARGET:.0%}); by upload -> winner: {styled['confusion']}"
    )
    print(
        f"{ADAPTERS} adapters attached: {loaded['per_adapter_mb']:.1f} MB resident each "
        f"({loaded['lora_mb']:.1f} MB of LoRA weights; target <= {MEMORY_TARGET:g} MB)"
    )
    single, mixed = (statistics.median(loaded["times"][k]) for k in ("single", "mixed"))
    tok = {k: statistics.median(v) for k, v in loaded["tokens"].items()}
    # Each side's texts stop where they end, and different adapters write different lengths: the time per
    # new token is the like-for-like cost; the time for the 64 is what a burst of people waits.
    per_token = (mixed / tok["mixed"]) / (single / tok["single"])
    print(
        f"{REQUESTS} requests: one adapter {single:.1f} s ({tok['single'] / single:.0f} tok/s), spread over "
        f"{ADAPTERS} adapters {mixed:.1f} s ({tok['mixed'] / mixed:.0f} tok/s): {mixed / single:.2f}x the "
        f"time, {per_token:.2f}x the time per new token (target <= {MIXED_TARGET:g}x; per-round s: "
        f"{loaded['times']})"
    )
    step = {k: statistics.median(v) for k, v in loaded["steps"].items()}
    print(
        f"forwards alone ({REQUESTS} rows, {STEPS} one-token steps each, no row stopping early): one adapter "
        f"{step['single']:.2f} s, {ADAPTERS} adapters {step['mixed']:.2f} s: {step['mixed'] / step['single']:.2f}x "
        f"(per-round s: {loaded['steps']})"
    )
    print(f"RESULT upload_to_answer_s {first['seconds']:.0f} target <= {TURNAROUND_TARGET:.0f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(REPO / ".linernotes" / "demo" / "checkpoint"))
    p.add_argument("--rounds", type=int, default=3, help="rounds of the 64-request comparison")
    p.add_argument(
        "--sweep", nargs="+", type=json.loads, metavar="JSON", help="only the style test, per recipe setting"
    )
    a = p.parse_args()
    checkpoint = Path(a.checkpoint)
    if not (checkpoint / "card.json").is_file():
        sys.exit(f"{checkpoint}: no checkpoint; run `make demo` first (or pass --checkpoint)")
    if not SONGS.is_dir():
        sys.exit(f"{SONGS}: the shared Genius sample is missing")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        if a.sweep:
            best = max(sweep(checkpoint, Path(tmp), a.sweep), key=lambda r: r["share"])
            print(
                f"RESULT style_best {best['share']:.2f} target >= {STYLE_TARGET} ({json.dumps(best['settings'])})"
            )
            return
        bot = asyncio.run(through_the_bot(checkpoint, Path(tmp)))
        styled = style(checkpoint, bot["servers"])
        loaded = many(checkpoint, bot["servers"], a.rounds)
    report(bot, styled, loaded)


if __name__ == "__main__":
    main()
