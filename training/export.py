"""``linernotes export``: a finished run becomes a self-describing checkpoint (int8 by default)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.data.format import KINDS, MIRRORED, SWAPPED
from linernotes.data.splits import iter_split
from linernotes.model.card import WEIGHT_PRECISIONS, Card
from linernotes.model.checkpoint import require_base, save_checkpoint
from linernotes.model.config import Sampling
from linernotes.model.copyguard import FILE as GUARD_FILE
from linernotes.model.copyguard import CopyGuard, build_index
from linernotes.model.copyguard import N as GUARD_N
from linernotes.model.quiet import quiet_transformers
from linernotes.training.ranker import fit_ranker

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


def _by_kind(given: Guidance, kinds: list[str], name: str = "guidance") -> dict[str, float]:
    """Each trained kind's default ``name`` setting (a kind not named: off, 1.0 for guidance, 0 for
    contrast), checked."""
    values = given if isinstance(given, Mapping) else dict.fromkeys(kinds, given)
    unknown = sorted(set(values) - set(KINDS))
    if unknown:
        raise ConfigError(f"{name} for {unknown[0]!r}: kinds are {', '.join(KINDS)}")
    for value in values.values():
        check_setting(value, name)
    return {k: float(values.get(k, OFF[name])) for k in kinds}


# The value of each setting that leaves sampling plain (candidates: warm-up's drafts per cached text, the
# ranker keeping one).
OFF = {"guidance": 1.0, "contrast": 0.0, "candidates": 1.0}
MEANING = {
    "guidance": "1.0: no guidance, 0: ignore the tags",
    "contrast": "0: off",
    "candidates": "1: no ranking",
}


def check_setting(value: float, name: str = "guidance") -> None:
    """Raise unless ``value`` is a usable default guidance scale or contrast weight (finite, >= 0), or a
    count of drafts (a whole number >= 1)."""
    if name == "candidates":
        if not (math.isfinite(value) and value >= 1 and value == int(value)):
            raise ConfigError(f"--{name} must be a whole number >= 1 ({MEANING[name]}), got {value:g}")
    elif not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"--{name} must be a number >= 0 ({MEANING[name]}), got {value}")


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


Guidance = float | Mapping[str, float]  # one default scale, or a scale per kind (kinds not named: 1.0)


def export(
    run: Path,
    out: Path,
    precision: str = "int8",
    merge: bool = False,
    guidance: Guidance = 1.0,
    contrast: Guidance = 0.0,
    candidates: Guidance = 1,
) -> Card:
    """Write ``out`` from ``run``'s best weights, with card (``guidance``: default scale, or one per kind;
    ``contrast``: default contrast weight, likewise; ``candidates``: warm-up's drafts per cached text, the
    ranker keeping one, likewise) and copy guard."""
    if precision not in WEIGHT_PRECISIONS:
        raise ConfigError(f"--precision must be one of {', '.join(WEIGHT_PRECISIONS)}, got {precision!r}")
    quiet_transformers()
    run = Path(run)
    info = read_run(run)
    by_kind = _by_kind(guidance, list(info["tags"]))
    # Only kinds with a tag to mirror or swap (data.format MIRRORED, SWAPPED) have a contrast.
    contrasted = [k for k in info["tags"] if k in MIRRORED or k in SWAPPED]
    contrast_by_kind = _by_kind(contrast, contrasted, "contrast")
    drafts = _by_kind(candidates, list(info["tags"]), "candidates")
    if any(g != 1.0 for g in by_kind.values()) and not info["config"].get("tag_dropout"):
        # Guidance contrasts with the unconditioned header, which such a model never saw in training.
        log.warning("--guidance %s on a run trained without --tag-dropout: guidance may not help", by_kind)
    model, tok, adapter = _load_trained(run, info, merge)
    if adapter and precision != "fp32":
        raise ConfigError(
            "an adapter checkpoint holds only the LoRA weights (fp32); pass --merge to export "
            f"{precision} weights of the merged model"
        )
    records = [item.record for src in info["data"]["sources"] for item in iter_split(Path(src))]
    guard = CopyGuard(build_index([r.text for r in records]))
    ranker = fit_ranker(records)
    steering = _generation(by_kind, contrast_by_kind, drafts)
    card = _card(run, info, model, tok, adapter, precision, merge, steering, guard)
    card.ranker = None if ranker is None else ranker.describe()

    def extras(directory: Path) -> None:
        guard.save(directory)
        if ranker is not None:
            ranker.save(directory)

    save_checkpoint(out, model, tok, card, precision, extras=extras)
    log.info("exported %s (%s) to %s", card.model_id, precision, out)
    return card


def _generation(
    by_kind: dict[str, float], contrast_by_kind: dict[str, float], drafts: dict[str, float]
) -> dict[str, Any]:
    """The card's sampling defaults: a scale per kind, and one for any other kind (the common scale, else 1);
    a contrast weight per kind where one is set; warm-up's drafts per kind where more than one."""
    scales = set(by_kind.values())
    default = scales.pop() if len(scales) == 1 else 1.0
    contrast = {k: x for k, x in contrast_by_kind.items() if x}
    ranked = {k: int(n) for k, n in drafts.items() if n > 1}
    return {
        "sampling": Sampling(guidance=default).to_dict(),
        "guidance": default,
        "guidance_by_kind": by_kind,
        **({"contrast_by_kind": contrast} if contrast else {}),
        **({"candidates_by_kind": ranked} if ranked else {}),
    }


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
