"""The bot's typed settings: defaults < TOML file < ``LINERNOTES_*`` environment < command-line flags.

The Discord token is not a setting: it is read from ``DISCORD_TOKEN`` (environment or ``.env``) by the
command that starts the bot, handed to discord.py, and never stored, logged or printed.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linernotes.common.errors import ConfigError

if TYPE_CHECKING:  # the model stack imports torch: only when the bot or a command needs it
    from linernotes.model.card import Card
    from linernotes.model.config import GenerateConfig, Sampling

log = logging.getLogger(__name__)
ENV_PREFIX = "LINERNOTES_"


@dataclass
class BotConfig:
    """Everything the bot needs besides its token."""

    checkpoint: str
    database: str = "linernotes.sqlite3"
    per_key: int = 3  # target depth of unserved generations per cache key
    hot_per_key: int = 8  # depth for the keys people ask for most
    hot_keys: int = 10
    warm_interval: float = 300.0  # seconds between warm-up runs; 0 disables the scheduler
    warm_batch: int = 16  # requests per worker job while warming
    warm_limit: int = 256  # generations per warm-up run at most (the next run continues)
    score_bucket: float = 0.5  # reviews are cached per genre x score rounded to this
    cooldown: float = 5.0  # seconds between one user's commands
    queue_size: int = 64
    max_queued_per_user: int = 2
    reactions: list[str] = field(default_factory=lambda: ["👍", "👎"])
    another_button: bool = True
    precision: str = "auto"
    device: str = "auto"
    backend: str = "local"
    backend_url: str | None = None
    guidance: float | None = None  # None: the checkpoint card's default
    min_chars: int | None = None  # shortest text worth serving; None: per-kind default
    sync: str = "auto"  # auto: sync commands when they changed; always; off; or a guild id for guild-only
    admin_permission: str = "manage_guild"  # who sees and may use /warm (per server)
    # /reload swaps the model for every server: only the application's owners and these user ids may,
    # and only checkpoints inside checkpoints_dir (unset: only the checkpoint the bot was started with).
    operators: list[str] = field(default_factory=list)
    checkpoints_dir: str | None = None
    job_timeout: float = 60.0  # seconds a generation job may run per text before it is given up
    # Server models (/model): each server may train adapters on the bot's model from lyrics it uploads.
    server_models: bool = True
    # Uploads, training runs and adapters; default: server-models/ beside the database.
    models_dir: str | None = None
    upload_limit: int = 2_000_000  # bytes per uploaded lyrics file
    models_per_server: int = 3
    training_queue: int = 8  # training jobs waiting at most (one runs at a time)
    adapter_steps: int = 48  # optimizer steps per adapter at most (about 3.5 s each on 2 CPU cores)
    train_cooldown: float = 120.0  # seconds between one server's /model train uploads (refused ones count)

    def __post_init__(self) -> None:
        for name in (
            "per_key",
            "hot_per_key",
            "warm_batch",
            "warm_limit",
            "queue_size",
            "max_queued_per_user",
            "upload_limit",
            "models_per_server",
            "training_queue",
            "adapter_steps",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"bot setting {name} must be positive, got {getattr(self, name)}")
        if self.warm_interval < 0 or self.cooldown < 0 or self.train_cooldown < 0:
            raise ConfigError("bot settings warm_interval, cooldown and train_cooldown must be >= 0")
        if self.job_timeout <= 0:
            raise ConfigError(f"bot setting job_timeout must be positive, got {self.job_timeout}")
        bad = [o for o in self.operators if not str(o).isdigit()]
        if bad:
            raise ConfigError(f"bot setting operators must be Discord user ids (numbers), got {bad[0]!r}")
        if not 0 < self.score_bucket <= 10:
            raise ConfigError(f"bot setting score_bucket must be in (0, 10], got {self.score_bucket}")
        if len(self.reactions) != 2:
            raise ConfigError(
                f"bot setting reactions must be two emoji (approve, reject), got {self.reactions}"
            )
        if self.sync not in {"auto", "always", "off"} and not self.sync.isdigit():
            raise ConfigError(f"bot setting sync must be auto, always, off or a guild id, got {self.sync!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (holds no secret)."""
        return asdict(self)


def generate_config(config: BotConfig) -> GenerateConfig:
    """The generator settings the bot's settings call for: the one place the bot, ``linernotes warm``
    and reloads turn one into the other."""
    from linernotes.model.config import GenerateConfig

    return GenerateConfig(
        precision=config.precision,
        device=config.device,
        backend=config.backend,
        backend_url=config.backend_url,
        min_chars=config.min_chars,
    )


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    """Convert a TOML or environment value to the field's type (``int | None`` counts as ``int``)."""
    base = str(getattr(kind, "__name__", kind)).replace(" | None", "").strip()
    if raw is None or (isinstance(raw, str) and raw.strip() == "" and "None" in str(kind)):
        return None
    try:
        if base == "int":
            return int(raw)
        if base == "float":
            return float(raw)
        if base == "bool":
            return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
        if base == "list[str]":
            return raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"bot setting {name}: {raw!r} is not a {base}") from None
    return raw if isinstance(raw, str) or base != "str" else str(raw)


def load_config(
    toml_path: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> BotConfig:
    """Merge the sources; unknown keys in the TOML file are an error naming the key."""
    known = {f.name: f.type for f in fields(BotConfig)}
    merged: dict[str, Any] = {}
    if toml_path:
        path = Path(toml_path)
        if not path.is_file():
            raise ConfigError(f"--config {path}: file not found")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"--config {path}: {e}") from None
        table = data.get("bot", data)
        for key, value in table.items():
            if key not in known:
                raise ConfigError(
                    f"--config {path}: unknown setting {key!r}; settings are: {', '.join(known)}"
                )
            merged[key] = _coerce(key, value, known[key])
    for key, value in (env or {}).items():
        name = key[len(ENV_PREFIX) :].lower() if key.startswith(ENV_PREFIX) else None
        if name in known:
            merged[name] = _coerce(name, value, known[name])
    merged.update({k: v for k, v in overrides.items() if v is not None})
    if "checkpoint" not in merged:
        raise ConfigError("no checkpoint given (pass CKPT, or set LINERNOTES_CHECKPOINT)")
    return BotConfig(**merged)


def sampling_for(config: BotConfig, card: Card) -> Sampling:
    """Sampling for the bot's generations (a fresh seed each time): the guidance setting, else the card's."""
    from linernotes.model.config import Sampling

    guidance = config.guidance if config.guidance is not None else card.generation.get("guidance", 1.0)
    return Sampling(guidance=guidance)
