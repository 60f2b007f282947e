"""The checkpoint card: what a checkpoint is and what it knows, read by the generator and the bot.

``card.json`` lives beside the weights. Nothing downstream hard-codes a genre list: the slash
commands, the tag validation and the cache keys all come from ``Card.tags``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from linernotes.common.errors import CheckpointError, TagError
from linernotes.data.format import FORMAT_VERSION, KINDS, RENDERINGS, normalize_tags

CARD_FILE = "card.json"
CARD_VERSION = 1
# How a checkpoint's weights are stored and loaded (export, generate, the bot).
WEIGHT_PRECISIONS = ("int8", "fp16", "bf16", "fp32")
CATEGORICAL = ("genre", "part", "artist")  # tags whose values a model knows from training (titles are free)


@dataclass
class Card:
    """Self-description of a checkpoint (architecture, tokenizer, tags known, metrics, configs)."""

    model_id: str
    base_model: str
    precision: str
    architecture: dict[str, Any]
    tokenizer: dict[str, Any]
    tags: dict[str, dict[str, Any]]  # kind -> {"examples": n, "genre": {...}, "score": [lo, hi], ...}
    format_version: int = FORMAT_VERSION
    # How headers were rendered in training (data/format.py RENDERINGS): every prompt to this model uses
    # the same. Cards written before renderings existed have none: their models were trained on "tags".
    rendering: str = "tags"
    card_version: int = CARD_VERSION
    created: str = ""
    adapter: dict[str, Any] | None = None  # LoRA: {"type": "lora", "base": NAME_OR_PATH, ...}
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)  # defaults (guidance scale, sampling)
    copy_guard: dict[str, Any] | None = None
    ranker: dict[str, Any] | None = None  # model/rank.py: judges that pick the most on-tag warm-up candidate

    @property
    def kinds(self) -> list[str]:
        """Kinds this model was trained on, in the format's order."""
        return [k for k in KINDS if k in self.tags]

    def values(self, kind: str, tag: str) -> list[str]:
        """Known values of a categorical tag (genres, parts, artists), most frequent first."""
        return list(self.tags.get(kind, {}).get(tag, {}))

    def guidance(self, kind: str) -> float:
        """The default guidance scale for ``kind``: the one chosen for it at export, else the card's one scale."""
        g = self.generation
        return float(g.get("guidance_by_kind", {}).get(kind, g.get("guidance", 1.0)))

    def contrast(self, kind: str) -> float:
        """The default contrast weight for ``kind`` (0: off): guidance away from its mirrored score or rating
        (and a review's other genre, a song's other part)."""
        return float(self.generation.get("contrast_by_kind", {}).get(kind, 0.0))

    def candidates(self, kind: str) -> int:
        """The drafts warm-up writes per cached text of ``kind``, the ranker keeping the most on-tag (1: no
        ranking), as the quality benchmark chose them at export."""
        return int(self.generation.get("candidates_by_kind", {}).get(kind, 1))

    def repetition_penalty(self, kind: str) -> float | None:
        """The repetition penalty chosen for ``kind`` at export (lyrics repeat their hooks, prose should
        not), else the card's sampling default; None when the card names none."""
        g = self.generation
        value = g.get("repetition_penalty_by_kind", {}).get(
            kind, g.get("sampling", {}).get("repetition_penalty")
        )
        return None if value is None else float(value)

    def score_range(self) -> tuple[float, float]:
        """The range of review scores seen in training."""
        lo, hi = self.tags.get("review", {}).get("score_range", (0.0, 10.0))
        return float(lo), float(hi)

    def check_request(self, kind: str, tags: dict[str, Any]) -> dict[str, Any]:
        """Validate requested tags against what this model knows; returns them normalized.

        Categorical values match case-insensitively and come back in the model's spelling.
        """
        if kind not in self.tags:
            raise TagError(f"this model was not trained on {kind}s; it knows: {', '.join(self.kinds)}")
        tags = normalize_tags(kind, tags)
        for name, value in list(tags.items()):
            if name == "score":
                lo, hi = self.score_range()
                if not lo <= value <= hi:
                    raise TagError(
                        f"score {value:g} is outside the range this model was trained on ({lo:g}-{hi:g})"
                    )
            elif name in CATEGORICAL:
                tags[name] = self.known_value(kind, name, str(value))
        return tags

    def known_value(self, kind: str, name: str, value: str) -> str:
        """``value`` of a categorical tag in this model's spelling (matched case-insensitively), or a
        ``TagError`` listing what it knows (the value shortened: it may be anything a user typed)."""
        known = self.values(kind, name)
        by_fold = {k.casefold(): k for k in known}
        if value.casefold() in by_fold:
            return by_fold[value.casefold()]
        shown = ", ".join(known[:25]) + (f", ... ({len(known)} in all)" if len(known) > 25 else "")
        raise TagError(f"{name} {value[:40]!r} is not one this model knows; it knows: {shown or 'none'}")

    def to_json(self) -> str:
        """Serialized card."""
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"


def read_card(path: Path) -> Card:
    """Read and check the card of a checkpoint directory; errors say what is wrong with which file."""
    file = Path(path) / CARD_FILE
    if not Path(path).is_dir():
        raise CheckpointError(f"{path}: no such checkpoint directory")
    if not file.is_file():
        raise CheckpointError(
            f"{path}: not a linernotes checkpoint (no {CARD_FILE}); export one with `linernotes export`"
        )
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{file}: corrupted ({e})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{file}: corrupted (not a JSON object)")
    fmt = raw.get("format_version")
    if fmt != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: uses tag format version {fmt}; this linernotes understands version {FORMAT_VERSION}. "
            "Re-export it with a matching linernotes, or upgrade."
        )
    if raw.get("card_version", 0) > CARD_VERSION:
        raise CheckpointError(
            f"{file}: card version {raw['card_version']} is newer than this linernotes reads"
        )
    if raw.get("rendering", "tags") not in RENDERINGS:
        raise CheckpointError(
            f"{file}: header rendering {raw['rendering']!r} is not one this linernotes knows "
            f"({', '.join(RENDERINGS)}); upgrade linernotes"
        )
    try:
        return Card(**{k: v for k, v in raw.items() if k in Card.__dataclass_fields__})
    except TypeError as e:
        raise CheckpointError(f"{file}: missing fields ({e})") from None


def write_card(path: Path, card: Card) -> None:
    """Write ``card.json`` into a checkpoint directory."""
    (Path(path) / CARD_FILE).write_text(card.to_json(), encoding="utf-8")
