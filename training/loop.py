"""``linernotes train``: the training loop.

One process or many (``accelerate launch`` / ``torchrun``): Accelerate handles devices, mixed precision
and gradient sync; data order, packing and tag dropout are ours and are a pure function of the seed
and epoch, which is what makes ``--resume`` exact. Only the main process writes files.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.data.format import FORMAT_VERSION
from linernotes.model.atomic import atomic_dir
from linernotes.model.quiet import quiet_transformers
from linernotes.training import dataset, setup
from linernotes.training.attention import Segments, body_hidden
from linernotes.training.config import TrainConfig
from linernotes.training.frozen import FrozenLayers, only_layers, supported
from linernotes.training.packing import IGNORE, collate, encode, epoch_blocks, pack, segments, useful_tokens
from linernotes.training.pairs import Pairs, collate_pairs, pair_loss
from linernotes.training.runlog import MetricsLog, perplexity, plot_loss
from linernotes.training.samples import samples
from linernotes.training.state import Progress, check_resumable, load_state, save_state

log = logging.getLogger(__name__)
StepHook = Callable[[Progress, float], None]


@dataclass(frozen=True)
class Plan:
    """What a run is about to do, told to an ``on_start`` hook before its first step."""

    total: int  # optimizer steps the run will take (unless stopped early)
    examples: int  # training examples
    val_examples: int  # validation examples: 0 means no validation loss, and best/ is the last step


StartHook = Callable[[Plan], None]


class LMLoss(nn.Module):
    """Summed next-token loss over target positions only.

    The LM head runs only on positions that have a target (body and end tokens), not on headers
    or padding: for GPT-2 the vocabulary projection is a large share of the compute.
    """

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm
        core = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
        self.body, self.head = core.base_model, core.get_output_embeddings()
        self.first_trained = 0  # the layer a cached ``frozen`` input enters at (training/frozen.py)

    def forward(
        self,
        input_ids,
        targets,
        position_ids,
        attention_mask,
        segments: Segments | None = None,
        frozen: torch.Tensor | None = None,
        reduce: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, target count) of a collated micro-batch (``segments``: see training/attention.py;
        ``frozen``: (B, T, H), the input to layer ``first_trained``, cached by training/frozen.py); with
        ``reduce`` False, (each target's loss (N,), the (B, T) mask of where the targets are), for
        training/pairs.py. One method either way, so a distributed wrapper sees every forward."""
        inputs: dict[str, Any] = {"position_ids": position_ids, "use_cache": False}
        if frozen is None:
            inputs["input_ids"], upper = input_ids, nullcontext()
        else:
            inputs["inputs_embeds"], upper = frozen, only_layers(self.body, self.first_trained, None)
        with upper:
            hidden = body_hidden(self.body, attention_mask, segments, **inputs)  # (B, T, H)
        keep = targets != IGNORE  # (B, T)
        logits = self.head(hidden[keep])  # (N, V)
        if not reduce:
            return F.cross_entropy(logits.float(), targets[keep], reduction="none"), keep
        return F.cross_entropy(logits.float(), targets[keep], reduction="sum"), keep.sum()


def lr_schedule(opt: torch.optim.Optimizer, config: TrainConfig, total: int) -> LambdaLR:
    """Linear warm-up, then cosine decay to ``lr * min_lr_ratio`` at ``total`` steps (transformers')."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    # Warm-up is capped at a tenth of the run, so a short run (tests, sweeps) still mostly decays.
    warm = min(config.warmup_steps, max(total // 10, 1))
    return get_cosine_with_min_lr_schedule_with_warmup(
        opt, num_warmup_steps=warm, num_training_steps=total, min_lr_rate=config.min_lr_ratio
    )


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": other, "weight_decay": 0.0}]
    # Fused AdamW runs on CPU too (torch >= 2.4): one kernel instead of one per tensor, about 3x faster
    # per optimizer step on GPT-2 small on 2 cores (bench/train_throughput.py found the unfused one slow).
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95), fused=True)


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX), by its flags (False if unknown)."""
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _mixed_precision(config: TrainConfig) -> str:
    # auto stays fp32 on a CPU: bf16 autocast pays only where the CPU multiplies bf16 natively, and that
    # is unmeasured; on AVX2 (no avx512_bf16) a bf16 GEMM ran 6x slower than fp32 (docs/benchmarks.md).
    if config.precision == "auto":
        if not torch.cuda.is_available():
            return "no"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if config.precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("--precision fp16 needs a GPU; on CPU use fp32, bf16 or auto")
    if config.precision == "bf16" and not torch.cuda.is_available() and not cpu_has_bf16():
        log.warning("--precision bf16: this CPU has no avx512_bf16 or amx_bf16; bf16 runs emulated, slower")
    return {"fp32": "no"}.get(config.precision, config.precision)


class Trainer:
    """One training run in ``config.out``: set up or resumed, trained, evaluated, recorded."""

    def __init__(
        self, config: TrainConfig, on_step: StepHook | None = None, on_start: StartHook | None = None
    ) -> None:
        from accelerate import Accelerator

        # The rendering is resolved once and recorded in the run, so a resume and the export see the same.
        config = replace(config, rendering=setup.rendering(config))
        self.config, self.on_step, self.on_start = config, on_step, on_start
        quiet_transformers()
        if config.threads:
            torch.set_num_threads(config.threads)
        self.run = Path(config.out)
        self.acc = Accelerator(mixed_precision=_mixed_precision(config), cpu=not torch.cuda.is_available())
        self.data = dataset.load(config.data, config.extra_data, config.max_examples)
        self.tags = dataset.known_tags(self.data.train)
        self._prepare_run_dir()
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        # A checkpoint base is named by its path: its model id tells export whether it was replaced since.
        self.base_model_id = None if config.from_scratch else setup.checkpoint_model_id(config.base)
        self.model, self.tokenizer = self._model_and_tokenizer()
        self.eos = self.tokenizer.eos_token_id
        self.pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos
        self.train_ex = encode(self.tokenizer, self.data.train, config.rendering)
        self.pairs = self._pairs()
        self.pair_stats: dict[str, float] = {}  # the last step's pair loss and accuracy, for the metrics
        self.val_blocks = pack(
            [
                s
                for ex in encode(self.tokenizer, self.data.val, config.rendering)
                for s in segments(ex, config.block_size, self.eos)
            ],
            config.block_size,
        )
        per_step = config.batch_size * config.grad_accum * self.acc.num_processes
        self.micro_per_epoch = math.ceil(
            len(epoch_blocks(self.train_ex, config.block_size, self.eos, config.seed, 0, config.tag_dropout))
            / config.batch_size
        )
        self.total = config.steps or max(
            1, math.ceil(config.epochs * self.micro_per_epoch * config.batch_size / per_step)
        )
        if config.max_steps:
            self.total = min(self.total, config.max_steps)
        self.loss = LMLoss(self.model)
        self.frozen = self._frozen_layers()
        opt = _optimizer(self.model, config)
        sched = lr_schedule(opt, config, self.total)
        self.progress = Progress()
        if config.resume:
            self.progress = load_state(self.run, self.model, opt, sched, config.lora)
        self.loss, self.opt, self.sched = self.acc.prepare(self.loss, opt, sched)
        self.metrics = MetricsLog(self.run / "metrics.jsonl", self.progress.step if config.resume else None)
        self.start_val: float | None = None

    # --- set-up -------------------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        c = self.config
        if c.resume:
            check_resumable(self.run, c, self.data.digest)
        elif (self.run / "state").exists() or (self.run / "run.json").exists():
            raise CheckpointError(
                f"--out {self.run} already holds a run; pass --resume to continue it, or choose another --out"
            )
        if self.acc.is_main_process:
            self.run.mkdir(parents=True, exist_ok=True)
            if not c.resume:
                (self.run / "metrics.jsonl").unlink(missing_ok=True)
                (self.run / "samples.jsonl").unlink(missing_ok=True)
                record = {
                    "train": c.to_dict(),
                    "format_version": FORMAT_VERSION,
                    "data_hash": self.data.digest,
                }
                (self.run / "config.json").write_text(json.dumps(record, indent=2) + "\n")
        log.info("train config: %s", json.dumps(c.to_dict()))

    def _model_and_tokenizer(self) -> tuple[Any, Any]:
        c, tok_dir = self.config, self.run / "tokenizer"
        if c.resume and tok_dir.is_dir():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
            model = (
                setup.scratch_model(c.from_scratch, tok, c.block_size)
                if c.from_scratch
                else setup.load_base(c.base)[0]
            )
        else:
            model, tok = setup.build(c, [r.text for r in self.data.train])
            if self.acc.is_main_process:
                tok.save_pretrained(tok_dir)
        tok.pad_token = tok.pad_token or tok.eos_token
        if c.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        if c.lora:
            model = setup.add_lora(model, c)
            if c.lora_forward == "fused":
                from linernotes.training.fused_lora import fuse

                fuse(model, c.dropout_draws)
        return model, tok

    def _pairs(self) -> Pairs | None:
        """What ``--pair-weight`` draws from (training/pairs.py), or None when it is off."""
        c = self.config
        if not c.pair_weight:
            return None
        pairs = Pairs(
            self.tokenizer,
            self.data.train,
            self.train_ex,
            self.tags,
            c.rendering,  # resolved in __init__, as the examples were encoded
            c.pair_tokens,
            c.seed,
        )
        if not pairs.items:
            raise ConfigError(
                "--pair-weight: no training example has a contrasting header (a review with a score or "
                "genre, a product with a rating, lyrics with a part or artist where the data has two); "
                "set --pair-weight 0"
            )
        return pairs

    def _pair_loss(self) -> torch.Tensor:
        """The pairwise header loss of this step's draw (a scalar with its graph); records its stats."""
        c = self.config
        assert self.pairs is not None
        drawn = self.pairs.draw(self.progress.step, c.pair_batch, self.acc.process_index)
        batch, owners = collate_pairs(drawn, self.pad, c.attention)
        batch = {k: v if v is None else v.to(self.acc.device) for k, v in batch.items()}
        with self.acc.autocast():
            losses, keep = self.loss(**batch, reduce=False)
        loss, accuracy = pair_loss(losses, owners.to(self.acc.device)[keep], len(drawn))
        self.pair_stats = {"pair_loss": round(float(loss.detach()), 5), "pair_acc": round(accuracy, 3)}
        return loss

    def _frozen_layers(self) -> FrozenLayers | None:
        """The cache of the layers below the LoRA (``--cache-frozen``), when the model allows it."""
        c = self.config
        if not (c.cache_frozen and c.lora and c.lora_layers):
            return None
        body = self.loss.body
        if not supported(body):
            # Not an error: the same training, at the uncached speed (the server recipe asks on every base).
            log.info("--cache-frozen: %s is not Llama-style; training uncached", type(body).__name__)
            return None
        self.loss.first_trained = setup.top_layers(self.model, c.lora_layers)[0]
        return FrozenLayers(body, self.loss.first_trained)

    # --- data ---------------------------------------------------------------------------------

    def _batches(self) -> Iterator[tuple[int, int, list]]:
        """(epoch, micro-batch index, blocks) for this process, continuing from the saved position."""
        c, p = self.config, self.progress
        epoch, start = p.epoch, p.batch
        while True:
            blocks = epoch_blocks(self.train_ex, c.block_size, self.eos, c.seed, epoch, c.tag_dropout)
            for i in range(start, math.ceil(len(blocks) / c.batch_size)):
                if i % self.acc.num_processes == self.acc.process_index:
                    yield epoch, i, blocks[i * c.batch_size : (i + 1) * c.batch_size]
            epoch, start = epoch + 1, 0

    def _forward(self, blocks: list) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        batch = {
            k: v if v is None else v.to(self.acc.device)
            for k, v in collate(blocks, c.block_size, self.pad, c.attention).items()
        }
        with self.acc.autocast():  # the cached lower layers run under the same precision as the rest
            if self.frozen:
                batch["frozen"] = self.frozen.hidden(blocks, batch)
            return self.loss(**batch)

    # --- loop ---------------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train to the end (or early stop / interrupt); returns the run summary."""
        c, p = self.config, self.progress
        batches = self._batches()
        bar = self._bar()
        status = "complete"
        started, last = time.perf_counter() - p.elapsed, time.perf_counter()
        cpu_started = time.process_time() - p.cpu
        if self.on_start:
            self.on_start(Plan(self.total, len(self.data.train), len(self.data.val)))
        self.start_val = self._start_val_loss()
        try:
            while p.step < self.total:
                loss, tokens = self._step(batches)
                p.step += 1
                p.tokens += tokens
                now = time.perf_counter()
                rate = tokens / max(now - last, 1e-9)
                last, p.elapsed, p.cpu = now, now - started, time.process_time() - cpu_started
                if self.acc.is_main_process:
                    self.metrics.write(
                        step=p.step,
                        loss=round(loss, 5),
                        lr=self.sched.get_last_lr()[0],
                        tokens=p.tokens,
                        tokens_per_s=round(rate, 1),
                        elapsed=round(p.elapsed, 2),
                        **self.pair_stats,
                    )
                if bar:
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{rate:,.0f}")
                    bar.update(1)
                if self.on_step:
                    self.on_step(p, loss)
                if self._periodic(p) == "stop":
                    status = "early-stopped"
                    break
                if c.max_minutes and p.elapsed >= 60 * c.max_minutes:
                    status = "time-budget"
                    if self.val_blocks and p.step % c.eval_every:
                        self._evaluate()  # so the best weights are chosen on the last ones too
                    break
        except KeyboardInterrupt:
            self._save_state()
            self._finish("interrupted")
            raise
        finally:
            if bar:
                bar.close()
        if p.step % c.save_every:
            self._save_state()
        return self._finish(status)

    def _step(self, batches: Iterator[tuple[int, int, list]]) -> tuple[float, int]:
        """One optimizer step over ``grad_accum`` micro-batches; returns (mean loss, useful tokens)."""
        c, p = self.config, self.progress
        total_loss, total_targets, tokens = 0.0, 0, 0
        self.loss.train()
        for micro in range(c.grad_accum):
            epoch, index, blocks = next(batches)
            p.epoch, p.batch = epoch, index + 1
            ctx = self.acc.no_sync(self.loss) if micro < c.grad_accum - 1 else nullcontext()
            with ctx:
                loss_sum, n = self._forward(blocks)
                loss = loss_sum / max(int(n), 1) / c.grad_accum
                if self.pairs and micro == c.grad_accum - 1:  # once a step, in the backward that syncs
                    loss = loss + c.pair_weight * self._pair_loss()
                self.acc.backward(loss)
            total_loss += float(loss_sum.detach())
            total_targets += int(n)
            tokens += useful_tokens(blocks)
        if c.grad_clip:
            self.acc.clip_grad_norm_(self.loss.parameters(), c.grad_clip)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return total_loss / max(total_targets, 1), tokens * self.acc.num_processes

    def _periodic(self, p: Progress) -> str | None:
        c, last = self.config, p.step == self.total
        if c.sample_every and (p.step % c.sample_every == 0 or last) and self.acc.is_main_process:
            self._samples()
        stop = None
        if self.val_blocks and (p.step % c.eval_every == 0 or last):
            stop = self._evaluate()
        if p.step % c.save_every == 0:
            self._save_state()
        return stop

    def evaluate_loss(self) -> float:
        """Mean loss per target token on the validation split (or its first ``eval_batches`` batches)."""
        c = self.config
        self.loss.eval()
        total, count = 0.0, 0
        batches = [
            self.val_blocks[i : i + c.batch_size] for i in range(0, len(self.val_blocks), c.batch_size)
        ]
        with torch.no_grad():
            for blocks in batches[: c.eval_batches]:
                loss_sum, n = self._forward(blocks)
                total, count = total + float(loss_sum), count + int(n)
        self.loss.train()
        return total / max(count, 1)

    def _start_val_loss(self) -> float | None:
        """LoRA: the validation loss before the first step, i.e. the base's (a new adapter changes nothing:
        its B matrices start at zero), so the card can show what the adapter gained. Written to the
        metrics as step 0 and read back from there on resume."""
        if not (self.config.lora and self.val_blocks):
            return None
        if self.progress.step:
            return next(
                (r["val_loss"] for r in self.metrics.read() if r["step"] == 0 and "val_loss" in r), None
            )
        val = self.evaluate_loss()
        if self.acc.is_main_process:
            self.metrics.write(step=0, val_loss=round(val, 5), val_ppl=round(perplexity(val), 3))
        log.info("step 0 (the base): validation loss %.4f (perplexity %.2f)", val, perplexity(val))
        return val

    def _evaluate(self) -> str | None:
        p, c = self.progress, self.config
        val = self.evaluate_loss()
        if self.acc.is_main_process:
            self.metrics.write(step=p.step, val_loss=round(val, 5), val_ppl=round(perplexity(val), 3))
            log.info("step %d: validation loss %.4f (perplexity %.2f)", p.step, val, perplexity(val))
        if p.best_val is None or val < p.best_val:
            p.best_val, p.best_step, p.bad_evals = val, p.step, 0
            self._save_best()
        else:
            p.bad_evals += 1
        return "stop" if c.patience and p.bad_evals >= c.patience else None

    def _samples(self) -> None:
        lm = self.acc.unwrap_model(self.loss).lm
        c = self.config
        out = samples(lm, self.tokenizer, self.tags, c.sample_tokens, c.seed, c.rendering or "tags")
        with (self.run / "samples.jsonl").open("a") as f:
            for s in out:
                f.write(json.dumps({"step": self.progress.step, **s}, ensure_ascii=False) + "\n")
                log.debug("sample %s %s: %s", s["kind"], s["tags"], s["text"][:200].replace("\n", " / "))

    # --- saving -------------------------------------------------------------------------------

    def _save_state(self) -> None:
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            save_state(
                self.run,
                self.acc.unwrap_model(self.loss).lm,
                self.opt,
                self.sched,
                self.progress,
                self.config.lora,
            )

    def _save_best(self) -> None:
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            lm = self.acc.unwrap_model(self.loss).lm

            def write(tmp: Path) -> None:
                lm.save_pretrained(tmp)
                self.tokenizer.save_pretrained(tmp)

            atomic_dir(self.run / "best", write)

    def _finish(self, status: str) -> dict[str, Any]:
        p = self.progress
        if not self.val_blocks and status != "interrupted":
            self._save_best()  # nothing to choose by: the final weights are the best we have
        summary = {
            "status": status,
            "steps": p.step,
            "total_steps": self.total,
            "tokens": p.tokens,
            "elapsed_s": round(p.elapsed, 1),
            "cpu_s": round(p.cpu, 1),
            "gpu_s": self._gpu_seconds(),
            "best_step": p.best_step or p.step,
            "best_val_loss": p.best_val,
            "best_val_ppl": None if p.best_val is None else perplexity(p.best_val),
            "start_val_loss": self.start_val,
            "tags": self.tags,
            "format_version": FORMAT_VERSION,
            "base": self.config.base_name,
            "base_model_id": self.base_model_id,
            "lora": self.config.lora,
            "data": {
                "hash": self.data.digest,
                "sources": self.data.sources,
                "train_examples": len(self.data.train),
                "val_examples": len(self.data.val),
                "stats": _data_stats(self.config.data),
            },
            "config": self.config.to_dict(),
        }
        if self.frozen:  # what --cache-frozen saved: segments through the lower layers once, then reused
            summary["frozen_cache"] = {"computed": self.frozen.computed, "reused": self.frozen.reused}
        if self.acc.is_main_process:
            (self.run / "run.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
            plot_loss(
                self.metrics.read(), self.run / "loss.png", f"{self.config.base_name} on {self.config.data}"
            )
        return summary

    def _gpu_seconds(self) -> float:
        """GPU seconds the run took: its time, when it trained on a GPU (held throughout), else none."""
        return round(self.progress.elapsed, 1) if self.acc.device.type == "cuda" else 0.0

    def _bar(self):
        if not (self.config.progress and self.acc.is_main_process):
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=self.total, initial=self.progress.step, desc="training", unit="step", dynamic_ncols=True
        )


def _data_stats(data: str) -> dict[str, Any]:
    path = Path(data) / "stats.json"
    if not path.is_file():
        return {}
    stats = json.loads(path.read_text())
    return {k: stats.get(k) for k in ("rows_read", "kept", "dropped", "splits", "tokens", "tags")}


def train(
    config: TrainConfig, on_step: StepHook | None = None, on_start: StartHook | None = None
) -> dict[str, Any]:
    """Run (or resume) training as configured; returns the run summary."""
    return Trainer(config, on_step, on_start).train()
