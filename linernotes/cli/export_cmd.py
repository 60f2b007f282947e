"""``linernotes export RUN --out CKPT``: a run's best weights as a self-describing checkpoint."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from linernotes.common.errors import ConfigError
from linernotes.common.flags import add_flags, flag
from linernotes.model.card import WEIGHT_PRECISIONS


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
        default_factory=list,
        metadata=flag(
            "a kind's own default scale, overriding --guidance for it; repeat per kind (e.g. review=1.5)",
            metavar="KIND=SCALE",
        ),
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser."""
    p = sub.add_parser("export", help="export a run as a checkpoint (int8 by default)")
    add_flags(p, ExportArgs)
    p.set_defaults(handler=run)


def guidance(default: float, per_kind: list[str]) -> float | dict[str, float]:
    """``--guidance`` alone, or a scale per kind: ``--kind-guidance``'s, else ``--guidance``."""
    if not per_kind:
        return default
    from linernotes.data.format import KINDS

    scales = dict.fromkeys(KINDS, default)
    for item in per_kind:
        kind, _, value = item.partition("=")
        try:
            scale = float(value)
        except ValueError:
            scale = None
        if kind not in KINDS or scale is None:
            raise ConfigError(
                f"--kind-guidance {item!r}: expected KIND=SCALE, KIND one of {', '.join(KINDS)}"
            )
        scales[kind] = scale
    return scales


def run(args: argparse.Namespace) -> int:
    """Export and summarise the card."""
    from linernotes.training.export import export

    card = export(args.run, args.out, args.precision, args.merge, guidance(args.guidance, args.kind_guidance))
    kinds = ", ".join(
        f"{k} ({v.get('examples', 0)} examples, guidance {card.guidance(k):g})" for k, v in card.tags.items()
    )
    print(f"exported {card.model_id} ({card.precision}) to {args.out}: knows {kinds}")
    return 0
