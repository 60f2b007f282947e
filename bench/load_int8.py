"""Loading an int8 checkpoint as fp32: what a server's ``/model train`` does twice (its training child
starts from the bot's int8 checkpoint, and exporting the adapter loads that base again).

Sides, interleaved (A B A B) in one process, medians of wall-clock seconds:

- bitsandbytes: how it was read before: ``from_pretrained`` through bitsandbytes' quantizer, its
  ``dequantize()``, then a fresh model of the class (randomly initialised) to load the floats into;
- ours: ``load_checkpoint(path, "fp32", "cpu")`` (model/dequant.py: the int8 weights dequantized once,
  straight from the file, by bitsandbytes' formula; no random init).

Both give the same weights (tests/model/test_dequant.py); this checks it again on the checkpoint given.

Usage::

    python bench/load_int8.py [--checkpoint .linernotes/demo/checkpoint] [--rounds 4]

Ends with ``RESULT load_int8_fp32_speedup <x> target >= 2x``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET = 2.0


def through_bitsandbytes(path: Path):
    """The reading before: bitsandbytes' loader and dequantize(), then the floats in a model of the class."""
    from transformers import AutoModelForCausalLM

    dequantized = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, device_map="cpu")
    dequantized.dequantize()
    config = dequantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    # bitsandbytes made GPT-2's Conv1D layers Linear ones, (out, in): their weights go back transposed.
    conv = {f"{n}.weight" for n, m in model.named_modules() if type(m).__name__ == "Conv1D"}
    model.load_state_dict({k: v.t() if k in conv else v for k, v in dequantized.state_dict().items()})
    return model


def ours(path: Path):
    """Today's reading."""
    from linernotes.model.checkpoint import load_checkpoint

    return load_checkpoint(path, "fp32", "cpu").model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(REPO / ".linernotes" / "demo" / "checkpoint"))
    p.add_argument("--rounds", type=int, default=4)
    a = p.parse_args()
    path = Path(a.checkpoint)
    if not (path / "card.json").is_file():
        sys.exit(f"{path}: no checkpoint; run `make demo` first (or pass --checkpoint)")
    import torch

    from linernotes.model.quiet import quiet_transformers

    quiet_transformers()
    sides = {"bitsandbytes": through_bitsandbytes, "ours": ours}
    times: dict[str, list[float]] = {name: [] for name in sides}
    # Once each first, untimed (imports and the page cache, for neither side's first round): the weights compared.
    mine, theirs = ours(path).state_dict(), through_bitsandbytes(path).state_dict()
    same = mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    del mine, theirs
    for _ in range(a.rounds):
        for name, load in sides.items():
            started = time.perf_counter()
            model = load(path)
            times[name].append(time.perf_counter() - started)
            del model
    for name, seconds in times.items():
        print(
            f"{name:12} median {statistics.median(seconds):.2f} s  (rounds: {[round(s, 2) for s in seconds]})"
        )
    print(f"same weights: {'yes' if same else 'NO'}")
    speedup = statistics.median(times["bitsandbytes"]) / statistics.median(times["ours"])
    print(f"RESULT load_int8_fp32_speedup {speedup:.2f}x target >= {TARGET:g}x")


if __name__ == "__main__":
    main()
