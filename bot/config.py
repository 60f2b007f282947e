"""The bot's typed settings: defaults < TOML file < ``LINERNOTES_*`` environment < command-line flags.

The Discord token is not a setting: it is read from ``DISCORD_TOKEN`` (environment or ``.env``) by the
command that starts the bot, handed to discord.py, and never stored, logged or printed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linernotes.bot.engines import is_postgres, shown_as
from linernotes.bot.web.config import WebConfig
from linernotes.common.errors import ConfigError
from linernotes.common.flags import flag
from linernotes.common.settings import layer, read_toml
from linernotes.model.config import GenerateConfig  # torch-free, as this module must stay

if TYPE_CHECKING:  # the model stack imports torch: only when the bot or a command needs it
    from linernotes.model.card import Card
    from linernotes.model.config import Sampling

log = logging.getLogger(__name__)
ENV_PREFIX = "LINERNOTES_"
# Who sees and may use /warm, /reload and /model in a server: Discord permissions a server's managers hold.
ADMIN_PERMISSIONS = (
    "administrator",
    "manage_guild",
    "manage_channels",
    "manage_roles",
    "manage_messages",
    "moderate_members",
    "kick_members",
    "ban_members",
)


GENERATOR_SETTINGS = ("precision", "device", "backend", "backend_url", "min_chars")


def _generator_setting(name: str) -> Any:
    """A bot setting that is one of GenerateConfig's, with its default, help and choices."""
    (source,) = [f for f in fields(GenerateConfig) if f.name == name]
    return field(default=source.default, metadata=source.metadata)


WEB_SETTINGS = ("host", "url", "rate", "burst", "operator_env")  # the bot's ``web_<name>``


def _web_setting(name: str) -> Any:
    """A bot setting ``web_<name>`` that is WebConfig's ``name``, with its default and help."""
    (source,) = [f for f in fields(WebConfig) if f.name == name]
    return field(default=source.default, metadata=source.metadata)


@dataclass
class BotConfig:
    """Everything the bot needs besides its token; every field is also a flag of ``linernotes bot``/``warm``."""

    checkpoint: str = field(
        metadata=flag("checkpoint directory (or LINERNOTES_CHECKPOINT)", positional=True, metavar="CKPT")
    )
    database: str = field(
        default="linernotes.sqlite3",
        metadata=flag(
            "the store: a SQLite file, or postgresql://USER@HOST/DB shared by several bot processes "
            "(a password from PGPASSWORD or ~/.pgpass, never in the URL's logs)",
            name="--db",
        ),
    )
    per_key: int = field(default=3, metadata=flag("target depth of unserved generations per cache key"))
    hot_per_key: int = field(default=8, metadata=flag("the depth for the keys people ask for most"))
    hot_keys: int = field(default=10, metadata=flag("how many of the most asked-for keys get that depth"))
    warm_interval: float = field(
        default=300.0, metadata=flag("seconds between warm-up runs (0: no scheduled warming)")
    )
    warm_batch: int = field(default=16, metadata=flag("requests per worker job while warming"))
    warm_candidates: int | None = field(
        default=None,
        metadata=flag(
            "drafts written per warmed generation, the most on-tag kept by the checkpoint's ranker (a cache "
            "miss: see --miss-draft-seconds); default: the checkpoint card's, per kind"
        ),
    )
    miss_draft_seconds: float = field(
        default=8.0,
        metadata=flag(
            "a cache miss on an idle generator writes as many of those drafts as fit in this many seconds by "
            "its kind's last miss, so nobody else waits (0: a miss writes one)"
        ),
    )
    warm_limit: int = field(
        default=256, metadata=flag("generations per warm-up run at most (the next run continues)")
    )
    score_bucket: float = field(
        default=0.5, metadata=flag("reviews are cached per genre and score rounded to this")
    )
    cooldown: float = field(default=5.0, metadata=flag("seconds between one user's commands"))
    queue_size: int = field(default=64, metadata=flag("generation requests waiting at most"))
    max_queued_per_user: int = field(default=2, metadata=flag("requests one user may have waiting"))
    reactions: list[str] = field(
        default_factory=lambda: ["👍", "👎"],
        metadata=flag(
            "the two rating emoji, approve then reject (the flag twice); default 👍 👎", metavar="EMOJI"
        ),
    )
    another_button: bool = field(default=True, metadata=flag("an 'another' button under each answer"))
    # Handed to the generator as they are: declared once, in GenerateConfig (see ``generate_config``).
    precision: str = _generator_setting("precision")
    device: str = _generator_setting("device")
    backend: str = _generator_setting("backend")
    backend_url: str | None = _generator_setting("backend_url")
    guidance: float | None = field(
        default=None, metadata=flag("classifier-free guidance scale; default: the checkpoint card's")
    )
    contrast: float | None = field(
        default=None,
        metadata=flag("contrast weight for every kind (0: off); default: the checkpoint card's"),
    )
    min_chars: int | None = _generator_setting("min_chars")
    sync: str = field(
        default="auto",
        metadata=flag(
            "auto: sync slash commands when they changed; always; off; or a server id (that server only, "
            "instantly)",
            metavar="auto|always|off|GUILD_ID",
        ),
    )
    admin_permission: str = field(
        default="manage_guild",
        metadata=flag(
            "who sees and may use /warm, /reload and /model in a server: %(choices)s",
            choices=ADMIN_PERMISSIONS,
            metavar="PERMISSION",
        ),
    )
    # /reload swaps the model for every server: only the application's owners and these user ids may,
    # and only checkpoints inside checkpoints_dir (unset: only the checkpoint the bot was started with).
    operators: list[str] = field(
        default_factory=list,
        metadata=flag(
            "Discord user ids who may /reload besides the application's owners (the flag again)",
            metavar="USER_ID",
        ),
    )
    checkpoints_dir: str | None = field(
        default=None,
        metadata=flag(
            "/reload loads only checkpoints inside this directory; default: only CKPT", metavar="DIR"
        ),
    )
    job_timeout: float = field(
        default=60.0, metadata=flag("seconds a generation job may run per text before it is given up")
    )
    server_models: bool = field(
        default=True, metadata=flag("/model: servers train adapters on this model from lyrics they upload")
    )
    models_dir: str | None = field(
        default=None,
        metadata=flag(
            "uploads, training runs and adapters; default: server-models/ beside the database", metavar="DIR"
        ),
    )
    trainer: bool = field(
        default=True,
        metadata=flag(
            "this process trains queued server models; with several processes on one store, set it on one "
            "(--no-trainer on the others: they queue uploads for it and serve what it trains)"
        ),
    )
    sync_interval: float = field(
        default=10.0,
        metadata=flag(
            "seconds between looks at the store for what other processes changed (models trained, chosen "
            "or deleted; a /reload); 0: never"
        ),
    )
    shard_ids: str | None = field(
        default=None,
        metadata=flag("the shards this process runs, e.g. 0,1 (with --shard-count: one cluster of shards)"),
    )
    shard_count: int | None = field(
        default=None, metadata=flag("shards across all processes (unset: as Discord recommends)")
    )
    upload_limit: int = field(default=2_000_000, metadata=flag("bytes per uploaded lyrics file"))
    models_per_server: int = field(default=3, metadata=flag("server models per server at most"))
    training_queue: int = field(
        default=8, metadata=flag("training jobs waiting at most (one runs at a time)")
    )
    adapter_steps: int = field(
        default=24,  # as the server recipe's cap (training/pipeline.py): 48 wrote no more in the style test
        metadata=flag("optimizer steps per adapter at most (about 2.5-6.5 s each on 2 CPU cores)"),
    )
    train_cooldown: float = field(
        default=120.0,
        metadata=flag("seconds between one server's /model train uploads (refused ones count)"),
    )

    web_port: int | None = field(
        default=None,
        metadata=flag(
            "serve the website and JSON API beside the bot on this port (unset: no website; 0: any)"
        ),
    )
    web_host: str = _web_setting("host")
    web_url: str | None = _web_setting("url")
    web_rate: float = _web_setting("rate")
    web_burst: int = _web_setting("burst")
    web_operator_env: str = _web_setting("operator_env")

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
        if self.warm_candidates is not None and self.warm_candidates <= 0:
            raise ConfigError(f"bot setting warm_candidates must be positive, got {self.warm_candidates}")
        if min(self.warm_interval, self.cooldown, self.train_cooldown, self.miss_draft_seconds) < 0:
            raise ConfigError(
                "bot settings warm_interval, cooldown, train_cooldown and miss_draft_seconds must be >= 0"
            )
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
        self.shards()  # checked now: a bad --shard-ids is refused before anything starts
        if self.sync_interval < 0:
            raise ConfigError(f"bot setting sync_interval must be >= 0, got {self.sync_interval}")
        if is_postgres(self.database) and self.server_models and not self.models_dir:
            raise ConfigError(
                "with a PostgreSQL store, set models_dir (--models-dir) to a directory every bot process "
                "sees (a shared volume): one process trains a server's model and all of them serve it"
            )
        self.web_url = web_settings(self).url  # checked (and its trailing slash dropped) as the site's own

    def shards(self) -> dict[str, Any]:
        """discord.py's sharding options for this process (none set: one process, Discord's count)."""
        if self.shard_ids is None:
            return {} if self.shard_count is None else {"shard_count": self.shard_count}
        try:
            ids = [int(part) for part in self.shard_ids.split(",")]
        except ValueError:
            raise ConfigError(
                f"bot setting shard_ids must be numbers like 0,1, got {self.shard_ids!r}"
            ) from None
        count = self.shard_count
        if count is None or count < 1 or len(set(ids)) != len(ids) or not all(0 <= i < count for i in ids):
            raise ConfigError(
                f"bot setting shard_ids {self.shard_ids!r} needs shard_count, and each id once, from 0 to "
                f"shard_count - 1 (shard_count: {count})"
            )
        return {"shard_ids": ids, "shard_count": count}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy (holds no secret: a store URL's password is masked)."""
        return asdict(self) | {"database": shown_as(self.database)}


def web_settings(config: BotConfig) -> WebConfig:
    """The website's settings the bot's call for (its ``web_*`` settings and its score buckets)."""
    names = {name: getattr(config, f"web_{name}") for name in WEB_SETTINGS}
    return WebConfig(port=config.web_port or 0, score_bucket=config.score_bucket, **names)


def generate_config(config: BotConfig) -> GenerateConfig:
    """The generator settings the bot's settings call for: the one place the bot, ``linernotes warm``
    and reloads turn one into the other."""
    return GenerateConfig(**{name: getattr(config, name) for name in GENERATOR_SETTINGS})


def load_config(
    toml_path: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
) -> BotConfig:
    """The bot's settings from the TOML file's ``[bot]`` table, ``LINERNOTES_*`` variables, then overrides."""
    toml = read_toml(toml_path, "bot") if toml_path else None
    where = f"--config {toml_path}: " if toml_path else ""
    # An override of None was not given (an unset flag): the file's or the environment's value stands.
    merged = layer(BotConfig, toml, env, ENV_PREFIX, where, env_label="bot setting {name}", **overrides)
    if "checkpoint" not in merged:
        raise ConfigError("no checkpoint given (pass CKPT, or set LINERNOTES_CHECKPOINT)")
    return BotConfig(**merged)


def drafts_for(config: BotConfig, card: Card, kind: str) -> int:
    """Drafts ranked per generation of ``kind`` at most: the ``warm_candidates`` setting, else the card's."""
    return card.candidates(kind) if config.warm_candidates is None else config.warm_candidates


def sampling_for(config: BotConfig, card: Card, kind: str) -> Sampling:
    """Sampling for the bot's generations of ``kind`` (a fresh seed each time): the guidance and contrast
    settings, else the card's for the kind (none on a completions server, which decodes one prompt a row)."""
    from linernotes.model.config import card_sampling

    guidance, contrast = config.guidance, config.contrast
    if config.backend != "local":  # no partner rows there: plain sampling unless a setting says otherwise
        guidance = 1.0 if guidance is None else guidance
        contrast = 0.0 if contrast is None else contrast
    return card_sampling(card, kind, guidance=guidance, contrast=contrast)
