"""The list of subcommand modules; each has ``register(subparsers)`` setting ``handler`` on its parser."""

from __future__ import annotations

from linernotes.cli import (
    adapter_cmd,
    bot_cmd,
    db_cmd,
    demo,
    eval_cmd,
    export_cmd,
    generate_cmd,
    models_cmd,
    playground,
    prepare_cmd,
    train_cmd,
    web_cmd,
)

MODULES = [
    demo,
    playground,
    prepare_cmd,
    train_cmd,
    export_cmd,
    generate_cmd,
    eval_cmd,
    bot_cmd,
    db_cmd,
    adapter_cmd,
    models_cmd,
    web_cmd,
]
