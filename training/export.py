"""``linernotes export``: a finished run becomes a self-describing checkpoint (int8 by default)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.data.splits import iter_split
from linernotes.model.card import WEIGHT_PRECISIONS, Card
from linernotes.model.checkpoint import require_base, save_checkpoint
from linernotes.model.copyguard import FILE as GUARD_FILE
from linernotes.model.copyguard import CopyGuard, build_index
from linernotes.model.copyguard import N as GUARD_N
from linernotes.model.quiet import quiet_transformers
from linernotes.training.ranker import fit_ranker
from linernotes.training.steering import Steering

log = logging.getLogger(__name__)


def read_run(run: Path) -> dict[str, Any]:
    """The run's summary, or a clear error when the directory is not a usable run."""
    summary = Path(run) / "run.json"
    if not summary.is_file():
        raise CheckpointError(
            f"{run}: no run.json; train first (or finish/interrupt the run) before exporting"
        )
    info = json.loads(summary.read_text())
    if not (Path(run) / "best").is_dir():
        raise CheckpointError(
            f"{run}: no best/ weights to export (was the run interrupted before its first evaluation?)"
        )
    return info


def _load_trained(run: Path, info: dict[str, Any], merge: bool) -> tuple[Any, Any, dict[str, Any] | None]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    best = Path(run) / "best"
    tok = AutoTokenizer.from_pretrained(best, local_files_only=True)
    if not info.get("lora"):
        return AutoModelForCausalLM.from_pretrained(best, local_files_only=True), tok, None
    from peft import PeftModel

    from linernotes.training.setup import load_base

    base_name = info["config"]["base"]
    named = adapter_base(run, base_name, info.get("base_model_id"))
    base, _ = load_base(base_name)
    model = PeftModel.from_pretrained(base, best)
    if merge:
        return model.merge_and_unload(), tok, None
    adapter = {
        "type": "lora",
        **named,
        "r": info["config"]["lora_r"],
        "alpha": info["config"]["lora_alpha"],
    }
    return model, tok, adapter


def adapter_base(run: Path, name: str, trained_on: str | None) -> dict[str, str]:
    """The adapter card's name for its base: a checkpoint by absolute path and model id, else as given."""
    # The model id lets a loader refuse a base exported again since (other weights under the same path);
    # export refuses that case itself, so an adapter is never labelled with a base it was not trained on.
    if trained_on is None:
        return {"base": name}
    path = Path(name).resolve()
    require_base(run, path, trained_on)
    return {"base": str(path), "base_model_id": trained_on}


def architecture(model: Any) -> dict[str, Any]:
    """The model's shape, as the card records it."""
    cfg = model.config
    keys = (
        "model_type",
        "n_layer",
        "n_embd",
        "n_head",
        "n_positions",
        "vocab_size",
        "num_hidden_layers",
        "hidden_size",
        "num_attention_heads",
        "max_position_embeddings",
    )
    arch = {k: getattr(cfg, k) for k in keys if getattr(cfg, k, None) is not None}
    arch["parameters"] = sum(p.numel() for p in model.parameters())
    return arch


def export(
    run: Path,
    out: Path,
    precision: str = "int8",
    merge: bool = False,
    steering: Steering | None = None,
) -> Card:
    """Write ``out`` from ``run``'s best weights, with card (its sampling defaults, per kind where given:
    ``steering``) and copy guard."""
    if precision not in WEIGHT_PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(WEIGHT_PRECISIONS)}, got {precision!r}")
    quiet_transformers()
    run = Path(run)
    info = read_run(run)
    generation = (steering or Steering()).generation(list(info["tags"]))
    guided = {k: g for k, g in generation["guidance_by_kind"].items() if g != 1.0}
    if guided and not info["config"].get("tag_dropout"):
        # Guidance contrasts with the unconditioned header, which such a model never saw in training.
        log.warning("--guidance %s on a run trained without --tag-dropout: guidance may not help", guided)
    model, tok, adapter = _load_trained(run, info, merge)
    if adapter and precision != "fp32":
        raise ConfigError(
            "an adapter checkpoint holds only the LoRA weights (fp32); pass --merge to export "
            f"{precision} weights of the merged model"
        )
    records = [item.record for src in info["data"]["sources"] for item in iter_split(Path(src))]
    guard = CopyGuard(build_index([r.text for r in records]))
    ranker = fit_ranker(records)
    card = _card(run, info, model, tok, adapter, precision, merge, generation, guard)
    card.ranker = None if ranker is None else ranker.describe()

    def extras(directory: Path) -> None:
        guard.save(directory)
        if ranker is not None:
            ranker.save(directory)

    save_checkpoint(out, model, tok, card, precision, extras=extras)
    log.info("exported %s (%s) to %s", card.model_id, precision, out)
    return card


# The run's figures a card carries; start_val_loss is, for LoRA, the base's loss the adapter is measured against.
METRICS = (
    "best_val_loss", "best_val_ppl", "start_val_loss", "best_step", "steps", "tokens", "status",
    "elapsed_s", "cpu_s", "gpu_s",  # what training cost (the website's operator view shows it)
)  # fmt: skip


def _card(
    run: Path,
    info: dict[str, Any],
    model: Any,
    tok: Any,
    adapter: dict[str, Any] | None,
    precision: str,
    merge: bool,
    generation: dict[str, Any],
    guard: CopyGuard,
) -> Card:
    """The exported checkpoint's card: what it is, what it knows, how it was trained and how it samples."""
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    # Everything that changes what the model writes is in the id (the bot's cache is keyed by it), the
    # default guidance and contrast too: a re-export at another scale within the same second is another model.
    steering = {k: v for k, v in generation.items() if k != "sampling"}
    ident = hashlib.blake2b(
        f"{info['data']['hash']}:{info['steps']}:{precision}:{merge}:{steering}:{created}".encode(),
        digest_size=4,
    ).hexdigest()
    return Card(
        model_id=f"{run.name}-{precision}-{ident}",
        base_model=info["base"],
        precision=precision,
        architecture=architecture(model),
        tokenizer={
            "class": type(tok).__name__,
            "vocab_size": len(tok),
            "eos_token": tok.eos_token,
            "trained_on_data": info["base"].startswith("scratch:"),
        },
        tags=info["tags"],
        # Runs recorded before renderings existed trained on the control codes.
        rendering=info["config"].get("rendering") or "tags",
        created=created,
        adapter=adapter,
        data=info["data"],
        training=info["config"],
        metrics={k: info.get(k) for k in METRICS},
        generation=generation,
        copy_guard={
            "file": GUARD_FILE,
            "ngram_words": GUARD_N,
            "ngrams": len(guard.index),
            "bytes": int(guard.index.nbytes),
            "run": guard.run,
            "max_share": guard.max_share,
        },
    )
