"""Many LoRA adapters served on one model: each adapted layer stacks every adapter's weights, and each
row of a batch is routed through its own adapter's.

peft's mixed-batch inference loops, in every adapted layer, over the adapters present in the batch (and
rebuilds each one's row list in Python): with 20 adapters on the 135M base's 210 adapted layers that is
4,200 pairs of small matmuls per token. Here rows are grouped by adapter once per forward (``_Plan``)
and every layer applies all groups at once with two batched matmuls: the grouped ("segmented") LoRA
of punica and vLLM, in plain torch. Rows routed to no adapter get the layer's own output untouched, so
a base row is written exactly as it is by the plain model.

Adapter checkpoints are peft's format (``adapter_config.json`` and ``adapter_model.safetensors``), as
``linernotes train --lora`` and ``linernotes adapter`` export them. Plain LoRA only: a checkpoint using
a peft variant (DoRA, per-module ranks, extra trained modules) is refused before the model is touched;
``model.lora_check`` checks an adapter's files (the same check ``linernotes models add`` applies).
Adapters of different ranks share a stack: a smaller rank is padded with zeros, which add nothing.

One adapter served alone (an adapter checkpoint loaded by ``model.checkpoint``) takes the same reader and
check, through ``apply_lora``: its LoRA is merged into the base's float weights, so it writes as fast as the
base (the 135M base, a rank-8 adapter on every projection, 8 requests of 64 tokens, one CPU thread: 70
tokens/s, the base alone 66, peft's PeftModel 55; the same texts); beside int8 weights (bitsandbytes) it is
added at run time instead (``FixedLora``), since a merge there would lose the adapter to int8 rounding or
give back the memory int8 saves. peft serves nothing: it trains adapters and writes their files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from linernotes.common.errors import AdapterError
from linernotes.model.adapters import unknown_adapter
from linernotes.model.lora_check import PREFIX, WEIGHTS, check_lora, layer_dims, linear_features, why

NO_ADAPTER = -1  # a row's slot when it runs on the model's own weights


@dataclass(frozen=True)
class LoraWeights:
    """One adapter's weights, ready to stack: per module path, A^T (in, r) and scale * B^T (r, out)."""

    rank: int
    layers: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def nbytes(self) -> int:
        """Bytes the weights take."""
        return sum(t.numel() * t.element_size() for pair in self.layers.values() for t in pair)


def read_lora(path: Path, model: nn.Module) -> LoraWeights:
    """The LoRA weights of the adapter checkpoint at ``path``, checked against ``model``'s layers."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    spec = check_lora(path, layer_dims(model))  # everything is checked before a tensor is read
    try:
        tensors = load_file(path / WEIGHTS)
    except (OSError, SafetensorError) as e:
        raise AdapterError.of(path, f"adapter weights could not be loaded ({WEIGHTS}: {why(e)})") from None
    layers = {}
    for name in spec.modules:
        a, b = tensors[f"{PREFIX}{name}.lora_A.weight"], tensors[f"{PREFIX}{name}.lora_B.weight"]
        # Stored as the batched matmuls use them; the scale folded into B once rather than every forward.
        layers[name] = (a.float().t().contiguous(), (b.float() * spec.scale).t().contiguous())
    return LoraWeights(spec.rank, layers)


def apply_lora(model: nn.Module, path: Path) -> LoraWeights:
    """Give ``model`` the adapter checkpoint at ``path`` for good (in place): its one adapter, every row."""
    weights = read_lora(Path(path), model)  # checked against every layer before any changes
    for name, (a, b) in weights.layers.items():
        layer = model.get_submodule(name)
        if layer.weight.is_floating_point():
            _merge(layer, a, b)
        else:
            # int8 (bitsandbytes): W + delta rounded back to int8 steps (a row's absmax / 127; 0.005, the
            # median over the 135M base's projections) would drop any part of the update under half a step;
            # dequantizing would give back the memory int8 saves, which is why one asks for int8. Two
            # rank-r matmuls per layer keep both.
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, FixedLora(layer, a, b))
    return weights


@torch.no_grad()
def _merge(layer: nn.Module, a: torch.Tensor, b: torch.Tensor) -> None:
    """Add A^T (in, r) @ scale * B^T (r, out) to a float layer's weight, summed in fp32."""
    weight = layer.weight
    delta = a.to(weight.device) @ b.to(weight.device)  # (in, out): how GPT-2's Conv1D stores its weight
    if type(layer).__name__ != "Conv1D":
        delta = delta.t()  # nn.Linear stores (out, in)
    weight.copy_(weight.float() + delta)  # rounded once, to the layer's dtype (bf16, fp16 or fp32)


class FixedLora(nn.Module):
    """A layer whose weights cannot take a merge (int8) plus one adapter's LoRA, on every row."""

    def __init__(self, base_layer: nn.Module, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        device = _device(base_layer)
        self.base_layer = base_layer
        self.a, self.b = a.to(device), b.to(device)  # A^T (in, r) and scale * B^T (r, out)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The layer's output (rows, ..., out) plus the low-rank update."""
        out = self.base_layer(x, *args, **kwargs)
        return out + ((x.to(self.a.dtype) @ self.a) @ self.b).to(out.dtype)


@dataclass(frozen=True)
class _Plan:
    """A forward's rows grouped by slot: what every adapted layer gathers, multiplies and adds back."""

    rows: torch.Tensor  # (groups * width,) batch rows by group; a short group padded with its first row
    slots: torch.Tensor | None  # (groups,) each group's slot; None: every slot, in order
    keep: torch.Tensor | None  # (groups * width,) 1 for a row, 0 for padding; None: no padding
    groups: int

    @classmethod
    def build(cls, slots: Sequence[int], loaded: int, device: torch.device) -> _Plan | None:
        """The plan for rows on ``slots`` (of ``loaded``); None when no row has an adapter."""
        members: dict[int, list[int]] = {}
        for row, slot in enumerate(slots):
            if slot != NO_ADAPTER:
                members.setdefault(slot, []).append(row)
        if not members:
            return None
        order = sorted(members)
        width = max(len(rows) for rows in members.values())
        rows = [r for s in order for r in members[s] + [members[s][0]] * (width - len(members[s]))]
        keep = [1.0 * (i < len(members[s])) for s in order for i in range(width)]
        return cls(
            rows=torch.tensor(rows, device=device),
            slots=None if order == list(range(loaded)) else torch.tensor(order, device=device),
            keep=None if all(keep) else torch.tensor(keep, device=device),
            groups=len(order),
        )


class LoraLinear(nn.Module):
    """A linear layer plus every loaded adapter's LoRA on it, applied to each row by its plan."""

    def __init__(self, base_layer: nn.Module, bank: LoraBank) -> None:
        super().__init__()
        dims = linear_features(base_layer)
        assert dims is not None, "check_lora checks every target is a linear layer"
        self.base_layer, self.dims = base_layer, dims
        self.bank = bank
        self.a: torch.Tensor | None = None  # (slots, in, rank): A^T of each adapter, zeros where absent
        self.b: torch.Tensor | None = None  # (slots, rank, out): scale * B^T

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The layer's output (rows, ..., out), each routed row plus its adapter's low-rank update."""
        out = self.base_layer(x, *args, **kwargs)
        plan = self.bank.plan
        if plan is None or self.a is None or self.b is None:
            return out
        a, b = self.a, self.b
        if plan.slots is not None:
            a, b = a.index_select(0, plan.slots), b.index_select(0, plan.slots)
        # x (rows, T, in) -> (groups, width * T, in): a group's rows and positions share one matrix.
        grouped = x.index_select(0, plan.rows).reshape(plan.groups, -1, x.shape[-1]).to(a.dtype)
        delta = torch.bmm(torch.bmm(grouped, a), b)  # (groups, width * T, out)
        delta = delta.reshape((plan.rows.numel(), *out.shape[1:]))  # (groups * width, T, out)
        if plan.keep is not None:
            delta = delta * plan.keep.view(-1, *[1] * (delta.dim() - 1))
        return out.index_add_(0, plan.rows, delta.to(out.dtype))

    def add(self, pair: tuple[torch.Tensor, torch.Tensor] | None, rank: int) -> None:
        """Stack one more adapter's (A^T, scale * B^T) here (zeros for an adapter without this layer)."""
        n_in, n_out = self.dims
        device = self.a.device if self.a is not None else _device(self.base_layer)
        a, b = pair if pair is not None else (torch.zeros(n_in, rank), torch.zeros(rank, n_out))
        width = max(rank, 0 if self.a is None else self.a.shape[-1])
        a, b = _pad(a[None].to(device), width, 2), _pad(b[None].to(device), width, 1)
        if self.a is None or self.b is None:
            self.a, self.b = a, b
        else:
            self.a = torch.cat([_pad(self.a, width, 2), a])
            self.b = torch.cat([_pad(self.b, width, 1), b])

    def drop(self, slot: int, rank: int) -> None:
        """Remove one adapter's weights; the stack keeps only the ``rank`` the others still need."""
        if self.a is None or self.b is None:
            return
        keep = [s for s in range(self.a.shape[0]) if s != slot]
        index = torch.tensor(keep, device=self.a.device)
        self.a = self.a.index_select(0, index)[:, :, :rank].contiguous()
        self.b = self.b.index_select(0, index)[:, :rank].contiguous()


def _pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """``t`` with dimension ``dim`` zero-padded to ``width`` (a smaller rank inside a larger stack)."""
    short = width - t.shape[dim]
    if short == 0:
        return t
    shape = list(t.shape)
    shape[dim] = short
    return torch.cat([t, t.new_zeros(shape)], dim=dim)


def _device(layer: nn.Module) -> torch.device:
    return next(layer.parameters()).device


class LoraBank:
    """The adapters loaded into one model, by name; a slot (stack index) each, in load order.

    Loading reads and checks the whole checkpoint before the model changes, so a bad one leaves nothing
    of itself; loading a name again adds the new weights before the old go (a failed load leaves the old
    adapter serving). Unloading the last adapter puts the model's own layers back.
    """

    def __init__(self) -> None:
        self._names: list[str] = []  # slot -> name
        self._ranks: list[int] = []  # slot -> rank
        self._layers: dict[str, LoraLinear] = {}  # module path -> its wrapper
        self.plan: _Plan | None = None  # the running forward's routing (set by ``routed``)

    def __bool__(self) -> bool:
        return bool(self._names)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> list[str]:
        """The adapters loaded, in slot order."""
        return list(self._names)

    @property
    def nbytes(self) -> int:
        """Bytes the stacked adapter weights take."""
        return sum(
            t.numel() * t.element_size() for m in self._layers.values() for t in (m.a, m.b) if t is not None
        )

    def load(self, model: nn.Module, name: str, path: Path) -> None:
        """Load the adapter checkpoint at ``path`` into ``model`` (in place) as ``name``."""
        weights = read_lora(Path(path), model)
        for layer in weights.layers:
            if layer not in self._layers:
                self._wrap(model, layer)
        for layer, wrapper in self._layers.items():
            wrapper.add(weights.layers.get(layer), weights.rank)
        old = self._names.index(name) if name in self._names else None
        self._names.append(name)
        self._ranks.append(weights.rank)
        if old is not None:
            self._drop(model, old)

    def unload(self, model: nn.Module, name: str) -> None:
        """Remove the adapter ``name`` from ``model``; with none left, its own layers come back."""
        if name not in self._names:
            raise unknown_adapter(name, self.names)
        self._drop(model, self._names.index(name))

    def slots(self, models: Sequence[str | None]) -> tuple[int, ...]:
        """The slot of each row's adapter (``NO_ADAPTER`` for None, the model's own weights)."""
        missing = [m for m in models if m is not None and m not in self._names]
        if missing:
            raise unknown_adapter(missing[0], self.names)
        return tuple(NO_ADAPTER if m is None else self._names.index(m) for m in models)

    @contextmanager
    def routed(self, slots: Sequence[int]) -> Iterator[None]:
        """Forwards inside run row ``i`` through the adapter in ``slots[i]``."""
        # Every stack lives where its model does: the first one says where (called on every forward).
        device = next((m.a.device for m in self._layers.values() if m.a is not None), torch.device("cpu"))
        self.plan = _Plan.build(slots, len(self._names), device)
        try:
            yield
        finally:
            self.plan = None

    def _wrap(self, model: nn.Module, path: str) -> None:
        parent, _, child = path.rpartition(".")
        wrapper = LoraLinear(model.get_submodule(path), self)
        for _ in self._names:  # adapters loaded before this layer was adapted: zeros
            wrapper.add(None, max(self._ranks))
        setattr(model.get_submodule(parent), child, wrapper)
        self._layers[path] = wrapper

    def _drop(self, model: nn.Module, slot: int) -> None:
        del self._names[slot], self._ranks[slot]
        if not self._names:  # the model's own layers back, exactly as before any load
            for path, wrapper in self._layers.items():
                parent, _, child = path.rpartition(".")
                setattr(model.get_submodule(parent), child, wrapper.base_layer)
            self._layers.clear()
            return
        for wrapper in self._layers.values():
            wrapper.drop(slot, max(self._ranks))


@dataclass(frozen=True)
class Routes:
    """The adapter each batch column runs through: a slot of ``bank`` per column."""

    bank: LoraBank
    slots: tuple[int, ...]

    def take(self, columns: Sequence[int]) -> Routes:
        """The routes of ``columns`` (batch positions, in their new order)."""
        return Routes(self.bank, tuple(self.slots[c] for c in columns))

    def applied(self) -> AbstractContextManager[None]:
        """A context in which the model's forwards follow these routes."""
        return self.bank.routed(self.slots)
