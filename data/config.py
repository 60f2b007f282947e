"""The data stage's typed configuration, built from CLI flags and saved beside the prepared splits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from data.errors import ConfigError


@dataclass
class DataConfig:
    """Everything ``linernotes prepare`` needs; recorded in ``stats.json`` and in every checkpoint."""

    sources: list[str]
    out: str
    kind: str | None = None  # needed only for generic tables
    format: str | None = None  # None: detect per file
    mapping: dict[str, str] = field(default_factory=dict)
    min_helpful: int = 0
    artist: str | None = None
    chunk_lines: int = 20
    titles: bool = False
    min_chars: int = 20
    max_chars: int = 20_000
    min_tokens: int | None = None
    max_tokens: int | None = None
    lowercase: bool = False
    dedupe: str = "near"  # near | exact | none
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    tokenizer: str = "gpt2"  # used for token counts when available locally; never downloaded

    def __post_init__(self) -> None:
        if not self.sources:
            raise ConfigError("prepare: give at least one SOURCE file or directory")
        if self.dedupe not in {"near", "exact", "none"}:
            raise ConfigError(f"--dedupe must be near, exact or none, got {self.dedupe!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 <= value < 0.5:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 0.5), got {value}")
        for name in ("min_helpful", "chunk_lines", "min_chars", "max_chars"):
            if getattr(self, name) < 0 or (name == "chunk_lines" and self.chunk_lines == 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


def parse_mapping(pairs: list[str] | str | None) -> dict[str, str]:
    """Parse ``text=review,genre=genre`` (or a list of such strings) into a field -> column dict."""
    if not pairs:
        return {}
    items = pairs.split(",") if isinstance(pairs, str) else [p for s in pairs for p in s.split(",")]
    mapping: dict[str, str] = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ConfigError(f"--map expects FIELD=COLUMN pairs, got {item!r}")
        mapping[name.strip()] = column.strip()
    return mapping
