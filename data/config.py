"""The data stage's typed configuration, built from CLI flags and saved beside the prepared splits."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import flag
from linernotes.data.format import KINDS
from linernotes.data.readers import FORMATS


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


@dataclass
class DataConfig:
    """Everything ``linernotes prepare`` needs; recorded in ``stats.json`` and in every checkpoint."""

    sources: list[str] = field(
        metadata=flag("files or directories to read", positional=True, nargs="+", metavar="SOURCE")
    )
    out: str = field(metadata=flag("output directory"))
    kind: str | None = field(
        default=None, metadata=flag("record kind (needed for generic tables)", choices=list(KINDS))
    )
    format: str | None = field(
        default=None, metadata=flag("input format (default: detect per file)", choices=FORMATS)
    )
    mapping: dict[str, str] = field(
        default_factory=dict,
        metadata=flag(
            "column mapping for tables, e.g. text=review,genre=genre,score=score",
            name="--map",
            action="append",
            metavar="FIELD=COLUMN[,...]",
            convert=parse_mapping,
        ),
    )
    min_helpful: int = field(default=0, metadata=flag("product reviews: minimum helpful votes"))
    artist: str | None = field(
        default=None, metadata=flag("lyrics/songs: artist for every record (default: from the file name)")
    )
    chunk_lines: int = field(default=20, metadata=flag("songs files without blank lines: lines per example"))
    titles: bool = field(
        default=False,
        metadata=flag(
            "lyrics: keep song titles as a tag (off by default: they lengthen every header and "
            "are a key for reciting memorised lyrics)"
        ),
    )
    min_chars: int = field(default=20, metadata=flag("drop texts shorter than this"))
    max_chars: int = field(default=20_000, metadata=flag("drop texts longer than this"))
    min_tokens: int | None = field(default=None, metadata=flag("drop texts of fewer tokens than this"))
    max_tokens: int | None = field(default=None, metadata=flag("drop texts of more tokens than this"))
    lowercase: bool = field(default=False, metadata=flag("lower-case all text (off by default)"))
    dedupe: str = field(
        default="near",
        metadata=flag(
            "near: also texts sharing most of their word 5-grams; exact: identical texts only",
            choices=["near", "exact", "none"],
        ),
    )
    val_fraction: float = field(default=0.05, metadata=flag("share of groups in the validation split"))
    test_fraction: float = field(default=0.05, metadata=flag("share of groups in the test split"))
    tokenizer: str = field(
        default="gpt2", metadata=flag("tokenizer for token counts, if available locally (never downloaded)")
    )

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
