"""The website's settings: flags of ``linernotes web``, and (as ``web_*``) of the bot, which can serve it too.

The operator view's token is not a setting: ``operator_env`` names the environment variable that holds it,
read when the site starts and never logged or stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linernotes.common.errors import ConfigError
from linernotes.common.flags import flag

TOKEN_ENV = "LINERNOTES_STATS_TOKEN"


@dataclass
class WebConfig:
    """Where the site listens, how it names itself, and how much one client may ask."""

    host: str = field(default="127.0.0.1", metadata=flag("address to listen on (0.0.0.0: every interface)"))
    port: int = field(default=8080, metadata=flag("port to listen on (0: any free port)"))
    url: str | None = field(
        default=None,
        metadata=flag(
            "the site's public base URL (https://notes.example.org): permalinks, link previews and /show use it",
            metavar="URL",
        ),
    )
    rate: float = field(
        default=10.0,
        metadata=flag("requests per second one client address may make on average (0: no limit)"),
    )
    burst: int = field(default=40, metadata=flag("requests one client address may make at once beyond that"))
    operator_env: str = field(
        default=TOKEN_ENV,
        metadata=flag(
            "the environment variable holding the /stats token (unset: no operator view)", metavar="NAME"
        ),
    )
    score_bucket: float = field(
        default=0.5, metadata=flag("reviews are cached per score rounded to this (the bot's score_bucket)")
    )

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"web port must be between 0 and 65535, got {self.port}")
        if self.rate < 0 or self.burst < 1:
            raise ConfigError(f"web rate must be >= 0 and burst >= 1, got {self.rate} and {self.burst}")
        if self.url is not None:
            self.url = self.url.rstrip("/")
            if not self.url.startswith(("http://", "https://")) or any(c in self.url for c in "?#\"'<> "):
                raise ConfigError(
                    f"web url must be an http(s) address without query or fragment, got {self.url!r}"
                )
        if not 0 < self.score_bucket <= 10:
            raise ConfigError(f"score_bucket must be in (0, 10], got {self.score_bucket}")
