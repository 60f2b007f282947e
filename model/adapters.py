"""LoRA adapters served beside their base: which checkpoints qualify, and what each brings.

An adapter checkpoint (``save_checkpoint`` of a peft model) holds only LoRA weights, a card whose
``adapter`` field names the base checkpoint's ``model_id``, and its own copy-guard index. Many adapters
can sit in one loaded model at once (``model.lora``), each row of a batch running through its own, so
requests for different adapters share forward passes without ever mixing their weights.
``check_adapter`` is the one check an adapter passes before it is registered or attached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linernotes.common.errors import AdapterError, CheckpointError, TagError
from linernotes.model.card import Card, read_card
from linernotes.model.copyguard import FILE as GUARD_FILE
from linernotes.model.copyguard import CopyGuard

MODEL_ID_MAX = 200  # an adapter's id is stored with every text it writes and shown in /model list


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
    card = _card(path)
    if not isinstance(card.adapter, dict) or card.adapter.get("type") != "lora":
        raise AdapterError.of(
            path,
            f"{card.model_id} is not a LoRA adapter checkpoint (its card has no LoRA adapter), "
            f"so it cannot be attached to {base.model_id}",
        )
    trained_on = card.adapter.get("base_model_id")
    if trained_on != base.model_id:
        from linernotes.model.lora_check import shown  # a card's field may hold anything, of any size

        raise AdapterError.of(
            path,
            f"adapter {card.model_id} was trained on base {shown(trained_on)}, "
            f"but this generator serves {base.model_id}",
        )
    if card.rendering != base.rendering:
        # One batch prompts every adapter with its base's rendering (model/generator.py).
        raise AdapterError.of(
            path,
            f"adapter {card.model_id} was trained on {card.rendering!r} headers, but {base.model_id} is "
            f"prompted with {base.rendering!r} headers (train the adapter again on this checkpoint)",
        )
    # Texts are stored and deleted by model id: an adapter under its base's id would own the base's texts.
    if card.model_id in (base.model_id, base.base_model):
        raise AdapterError.of(
            path,
            f"card.json: the adapter's model_id {card.model_id!r} is the id of the model it adapts; "
            "an adapter needs an id of its own (export its run again)",
        )
    return card


def check_adapter(path: Path, base: Card, base_path: Path) -> Card:
    """The one check an adapter passes before it is registered or attached: its card (LoRA, trained on
    ``base``, an id of its own), its copy-guard index, and its LoRA files against the layers of the base
    checkpoint at ``base_path`` (read from its config: no weights are loaded). Returns its card."""
    from linernotes.model.lora_check import base_layers, check_lora  # torch: only when checking

    path = Path(path)
    card = read_adapter_card(path, base)
    _check_guard(path)
    check_lora(path, base_layers(base_path))
    return card


def _card(path: Path) -> Card:
    """The adapter's card, with the fields the bot relies on of the types it relies on."""
    try:
        card = read_card(path)
    except CheckpointError as e:
        raise AdapterError(str(e), "its card (card.json) is missing or unreadable") from None
    model_id = card.model_id
    if not (isinstance(model_id, str) and model_id.strip() and len(model_id) <= MODEL_ID_MAX):
        raise AdapterError.of(path, f"card.json: model_id is not a name of 1-{MODEL_ID_MAX} characters")
    if not (isinstance(card.tags, dict) and all(isinstance(t, dict) for t in card.tags.values())):
        raise AdapterError.of(path, "card.json: tags is not an object of objects (kind -> what it knows)")
    if not isinstance(card.metrics, dict):
        raise AdapterError.of(path, "card.json: metrics is not an object")
    return card


def _check_guard(path: Path) -> None:
    """Refuse a copy-guard index that is not the list of 64-bit hashes the generator reads."""
    import numpy as np

    from linernotes.model.lora_check import why

    file = path / GUARD_FILE
    if not file.exists() and not file.is_symlink():
        return  # optional: an adapter without one is checked against its base's only
    try:  # the header alone: the array is mapped, not read
        index = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise AdapterError.of(path, f"{GUARD_FILE} could not be read ({why(e)})") from None
    if index.ndim != 1 or index.dtype != np.uint64:
        raise AdapterError.of(
            path, f"{GUARD_FILE}: not a list of 64-bit hashes ({index.dtype}, {index.ndim}-D)"
        )


def unknown_adapter(name: str, attached: list[str]) -> TagError:
    """The error for a request naming an adapter that is not (or no longer) attached."""
    known = ", ".join(attached) if attached else "none"
    return TagError(f"no adapter named {name!r} is attached to this model (attached: {known})")
