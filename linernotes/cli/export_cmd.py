"""``linernotes export RUN --out CKPT``: a run's best weights as a self-describing checkpoint."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import add_flags, flag
from linernotes.model.card import WEIGHT_PRECISIONS

METAVARS = {"guidance": "SCALE", "contrast": "WEIGHT", "candidates": "N", "repetition_penalty": "PENALTY"}


def _per_kind(what: str, setting: str, example: str) -> dict[str, Any]:
    """The metadata of a repeatable ``--kind-SETTING KIND=VALUE`` flag (``setting``: the field it overrides)."""
    return flag(
        f"a kind's own {what}, overriding --{setting.replace('_', '-')} for it; repeat per kind (e.g. {example})",
        metavar=f"KIND={METAVARS[setting]}",
    )


@dataclass(frozen=True)
class ExportArgs:
    """What ``linernotes export`` takes: the run, where the checkpoint goes, and what goes in its card."""

    run: str = field(metadata=flag("run directory from `linernotes train`", positional=True))
    out: str = field(metadata=flag("checkpoint directory to write"))
    precision: str = field(
        default="int8", metadata=flag("precision the weights are stored in", choices=WEIGHT_PRECISIONS)
    )
    merge: bool = field(default=False, metadata=flag("fold a LoRA adapter into its base weights"))
    guidance: float = field(
        default=1.0,
        metadata=flag(
            "default classifier-free guidance scale stored in the card (1.0: none; train with --tag-dropout)"
        ),
    )
    kind_guidance: list[str] = field(
        default_factory=list, metadata=_per_kind("default scale", "guidance", "review=1.5")
    )
    contrast: float = field(
        default=0.0,
        metadata=flag(
            "default contrast weight stored in the card: guidance away from the mirrored score or rating, "
            "a review's other genre and a song's other part (0: off)"
        ),
    )
    kind_contrast: list[str] = field(
        default_factory=list, metadata=_per_kind("contrast weight", "contrast", "review=1")
    )
    candidates: int = field(
        default=1,
        metadata=flag(
            "drafts the bot's warm-up writes per cached text, the checkpoint's ranker keeping the most on-tag "
            "(1: no ranking; the bot's cache misses write them only when its generator is idle)"
        ),
    )
    kind_candidates: list[str] = field(
        default_factory=list, metadata=_per_kind("drafts per cached text", "candidates", "review=4")
    )
    repetition_penalty: float = field(
        default=1.1,
        metadata=flag(
            "default CTRL-style penalty on tokens already seen, stored in the card (1: off; lower lets a text "
            "repeat its lines, as choruses do, and also loop)"
        ),
    )
    kind_repetition_penalty: list[str] = field(
        default_factory=list,
        metadata=_per_kind("repetition penalty", "repetition_penalty", "lyrics=1.05"),
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser."""
    p = sub.add_parser("export", help="export a run as a checkpoint (int8 by default)")
    add_flags(p, ExportArgs)
    p.set_defaults(handler=run)


def per_kind(default: float, items: list[str], name: str = "guidance") -> float | dict[str, float]:
    """``--guidance`` alone, or a scale per kind: ``--kind-guidance``'s, else ``--guidance`` (likewise
    ``--contrast``, ``--candidates`` and ``--repetition-penalty``)."""
    if not items:
        return default
    from linernotes.data.format import KINDS

    scales = dict.fromkeys(KINDS, default)
    for item in items:
        kind, _, value = item.partition("=")
        try:
            scale = float(value)
        except ValueError:
            scale = None
        if kind not in KINDS or scale is None:
            raise ConfigError(
                f"--kind-{name.replace('_', '-')} {item!r}: expected KIND={METAVARS[name]}, "
                f"KIND one of {', '.join(KINDS)}"
            )
        scales[kind] = scale
    return scales


def run(args: argparse.Namespace) -> int:
    """Export and summarise the card."""
    from linernotes.training.export import export
    from linernotes.training.steering import OFF, Steering

    plain = OFF["repetition_penalty"]  # the sampling default: not worth a mention
    # Each card setting (a Steering field) from its flag and its --kind- flag.
    names = [f.name for f in fields(Steering)]
    steering = Steering(**{s: per_kind(getattr(args, s), getattr(args, f"kind_{s}"), s) for s in names})
    card = export(args.run, args.out, args.precision, args.merge, steering)
    kinds = ", ".join(
        f"{k} ({v.get('examples', 0)} examples, guidance {card.guidance(k):g}"
        + (f", contrast {card.contrast(k):g}" if card.contrast(k) else "")
        + (f", best of {card.candidates(k)} drafts warmed" if card.candidates(k) > 1 else "")
        + (f", repetition penalty {penalty:g}" if (penalty := card.repetition_penalty(k)) != plain else "")
        + ")"
        for k, v in card.tags.items()
    )
    print(f"exported {card.model_id} ({card.precision}) to {args.out}: knows {kinds}")
    return 0
