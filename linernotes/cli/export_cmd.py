"""``linernotes export RUN --out CKPT``: a run's best weights as a self-describing checkpoint."""

from __future__ import annotations

import argparse

from linernotes.model.card import WEIGHT_PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` parser."""
    p = sub.add_parser("export", help="export a run as a checkpoint (int8 by default)")
    p.add_argument("run", help="run directory from `linernotes train`")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--precision", choices=WEIGHT_PRECISIONS, default="int8")
    p.add_argument("--merge", action="store_true", help="fold a LoRA adapter into its base weights")
    p.add_argument(
        "--guidance",
        type=float,
        default=1.0,
        help="default classifier-free guidance scale stored in the card (1.0: none; train with --tag-dropout)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Export and summarise the card."""
    from linernotes.training.export import export

    card = export(args.run, args.out, args.precision, args.merge, args.guidance)
    kinds = ", ".join(f"{k} ({v.get('examples', 0)} examples)" for k, v in card.tags.items())
    guidance = card.generation["guidance"]
    print(f"exported {card.model_id} ({card.precision}, guidance {guidance:g}) to {args.out}: knows {kinds}")
    return 0
