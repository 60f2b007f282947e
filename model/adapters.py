"""LoRA adapters served beside their base: which checkpoints qualify, and their weights in one model.

An adapter checkpoint (``save_checkpoint`` of a peft model) holds only LoRA weights, a card whose
``adapter`` field names the base checkpoint's ``model_id``, and its own copy-guard index. Many adapters
can sit in one loaded model at once; peft's mixed-batch inference then applies to each row of a batch
the adapter named for it (``adapter_names=[...]``, ``BASE`` for a row with the model's own weights),
so requests for different adapters share forward passes without ever mixing their weights.
"""

from __future__ import annotations

import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from data.errors import CheckpointError, TagError
from model.card import Card, read_card
from model.copyguard import CopyGuard

BASE = "__base__"  # peft's adapter name for "no adapter" in a mixed batch


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


class LoraSlots:
    """Adapters loaded into one model, each under a peft name of its own (a slot).

    Slots, rather than the callers' names, let attaching a name again load the new weights before the
    old ones go (a failed load leaves the old adapter serving), and let names hold any character. A
    failed load leaves nothing of itself in the model.
    """

    def __init__(self) -> None:
        self._slots: dict[str, str] = {}  # adapter name -> peft adapter name
        self._numbers = itertools.count(1)

    def __bool__(self) -> bool:
        return bool(self._slots)

    @property
    def names(self) -> list[str]:
        """The adapters loaded, by name."""
        return list(self._slots)

    def load(self, model: Any, name: str, path: Path) -> Any:
        """``model`` with the adapter at ``path`` loaded as ``name`` (a peft wrapper; eval mode)."""
        from peft import PeftModel

        slot = f"slot{next(self._numbers)}"
        try:
            if self._slots:
                model.load_adapter(str(path), adapter_name=slot)
            else:
                model = PeftModel.from_pretrained(model, str(path), adapter_name=slot)
        except (OSError, ValueError, RuntimeError, KeyError, SafetensorError, pickle.UnpicklingError) as e:
            # peft adds the layers before it reads the weights: take them out again, or a first adapter's
            # half-loaded layers would act on every later forward (none names adapters without one).
            if self._slots:
                if slot in model.peft_config:
                    model.delete_adapter(slot)
            else:
                _strip_lora(model)
            raise CheckpointError(
                f"{path}: adapter weights could not be loaded ({type(e).__name__}: {e})"
            ) from None
        old = self._slots.get(name)
        self._slots[name] = slot
        if old:
            _delete(model, old, slot)
        return model.eval()  # peft refuses per-row adapter names in training mode

    def unload(self, model: Any, name: str) -> Any:
        """``model`` without the adapter ``name``; without any adapter left, the plain model again."""
        if name not in self._slots:
            raise unknown_adapter(name, self.names)
        slot = self._slots.pop(name)
        if self._slots:
            _delete(model, slot, next(iter(self._slots.values())))
            return model.eval()
        # The last one: the original modules come back, so forwards are again exactly as before any attach.
        return model.unload().eval()

    def row_names(self, models: list[str | None]) -> list[str]:
        """peft's ``adapter_names`` for rows asking for ``models`` (None: the model's own weights)."""
        missing = [m for m in models if m is not None and m not in self._slots]
        if missing:
            raise unknown_adapter(missing[0], list(self._slots))
        return [BASE if m is None else self._slots[m] for m in models]


def _delete(model: Any, slot: str, other: str) -> None:
    """Delete a peft adapter; ``other`` (still loaded) becomes the active one if ``slot`` was."""
    # Every forward names each row's adapter, so which one is active does not matter; peft would warn.
    if slot in model.active_adapters:
        model.set_adapter(other, inference_mode=True)
    model.delete_adapter(slot)


def _strip_lora(model: Any) -> None:
    """Put back, in place, every layer peft wrapped in ``model`` (what peft's ``unload`` does)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    if hasattr(model, "peft_config"):  # peft's record of its adapters: the next wrap would inherit it
        del model.peft_config
