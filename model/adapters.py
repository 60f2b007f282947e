"""LoRA adapters served beside their base: which checkpoints qualify, and what each brings.

An adapter checkpoint (``save_checkpoint`` of a peft model) holds only LoRA weights, a card whose
``adapter`` field names the base checkpoint's ``model_id``, and its own copy-guard index. Many adapters
can sit in one loaded model at once (``model.lora``), each row of a batch running through its own, so
requests for different adapters share forward passes without ever mixing their weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linernotes.common.errors import CheckpointError, TagError
from linernotes.model.card import Card, read_card
from linernotes.model.copyguard import CopyGuard


@dataclass(frozen=True)
class Adapter:
    """An attached adapter: what it knows (card) and what it was trained on (its own copy guard)."""

    name: str
    path: Path
    card: Card
    guard: CopyGuard | None


def read_adapter_card(path: Path, base: Card) -> Card:
    """The card of the adapter checkpoint at ``path``, refused unless it was trained on ``base``."""
    if base.adapter:
        raise CheckpointError(
            f"cannot attach {path}: this generator serves {base.model_id}, itself an unmerged LoRA adapter "
            "checkpoint; adapters attach to full weights only (export its run with --merge and serve that)"
        )
    card = read_card(path)
    if not card.adapter or card.adapter.get("type") != "lora":
        raise CheckpointError(
            f"{path}: {card.model_id} is not a LoRA adapter checkpoint (its card has no LoRA adapter), "
            f"so it cannot be attached to {base.model_id}"
        )
    trained_on = card.adapter.get("base_model_id")
    if trained_on != base.model_id:
        raise CheckpointError(
            f"{path}: adapter {card.model_id} was trained on base {trained_on}, "
            f"but this generator serves {base.model_id}"
        )
    return card


def unknown_adapter(name: str, attached: list[str]) -> TagError:
    """The error for a request naming an adapter that is not (or no longer) attached."""
    known = ", ".join(attached) if attached else "none"
    return TagError(f"no adapter named {name!r} is attached to this model (attached: {known})")
