"""What a request asks for: the kind and tag values of ``/api/<kind>`` and of the browse page, checked.

A value left out (or empty) means any. Reviews are matched by score bucket, as the bot's cache keys them.
Every refusal is a ``BadRequest`` saying which parameter is wrong and what it may be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from linernotes.bot.cache import Key, bucket, parse_key
from linernotes.bot.web.errors import BadRequest
from linernotes.common.errors import FormatError, TagError
from linernotes.data.format import KINDS, convert_value
from linernotes.model.card import Card

# The tags a visitor may ask by, per kind: those the cache is keyed by (free text such as a headline never is).
PARAMS: dict[str, tuple[str, ...]] = {
    "review": ("genre", "score"),
    "product": ("rating",),
    "lyrics": ("part", "artist"),
}
TEXT_TAGS = ("genre", "part", "artist")
MAX_VALUE = 100  # characters in one value: more than any genre, part or artist name


@dataclass(frozen=True)
class Query:
    """A kind and the tag values asked for (only those given, in ``PARAMS`` order)."""

    kind: str
    tags: tuple[tuple[str, Any], ...] = ()

    def matches(self, key: str) -> bool:
        """Whether the cache key ``key`` holds generations this query asks for."""
        try:
            parsed = parse_key(key)
        except (ValueError, IndexError):
            return False  # not a cacheable key (nothing the web serves)
        return parsed.kind == self.kind and all(_same(name, value, parsed) for name, value in self.tags)

    @property
    def label(self) -> str:
        """The query as a cache key with ``*`` for any value: how the operator view counts requests."""
        given = dict(self.tags)
        return "|".join([self.kind, *(_shown(given.get(name)) for name in PARAMS[self.kind])])

    def as_params(self) -> dict[str, str]:
        """The query's parameters, for a link back to it."""
        return {name: _shown(value) for name, value in self.tags}


def _same(name: str, value: Any, key: Key) -> bool:
    have = key.tags.get(name)
    if name in TEXT_TAGS:
        return have is not None and str(have).casefold() == str(value).casefold()
    return have is not None and float(have) == float(value)


def _shown(value: Any) -> str:
    if value is None:
        return "*"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def parse_query(kind: str, params: Mapping[str, str], step: float, card: Card | None = None) -> Query:
    """The query ``params`` make for ``kind``; a ``BadRequest`` for an unknown or repeated parameter or a
    value out of range (or, with the serving model's ``card``, one that model does not know)."""
    allowed = PARAMS[kind]
    keys = [name for name, _ in params.items()]  # every one given (a multidict repeats a name)
    for name in keys:
        if name not in allowed:
            raise BadRequest(f"unknown parameter {name[:40]!r}: {kind} takes {', '.join(allowed)}")
        if keys.count(name) > 1:
            raise BadRequest(f"parameter {name!r} is given {keys.count(name)} times; give it once")
    tags = []
    for name in allowed:
        raw = params.get(name, "").strip()
        if raw:
            tags.append((name, _value(kind, name, raw, step, card)))
    return Query(kind, tuple(tags))


def _value(kind: str, name: str, raw: str, step: float, card: Card | None) -> Any:
    """One parameter's value, checked against the tag format (and the card's known values)."""
    if len(raw) > MAX_VALUE:
        raise BadRequest(f"{name} is {len(raw)} characters long; at most {MAX_VALUE}")
    (spec,) = [s for s in KINDS[kind] if s.name == name]
    try:
        value = convert_value(spec, raw, name)  # the bot's own conversion: a part normalized, a score to 0.1
    except FormatError as e:
        raise BadRequest(str(e)) from None
    if spec.type is str:
        return _known(card, kind, name, value)
    if spec.type is float and card is not None and kind in card.tags:
        lo, hi = card.score_range()
        if not lo <= value <= hi:
            raise BadRequest(
                f"{name} {value:g} is outside the range this model was trained on ({lo:g}-{hi:g})"
            )
    return bucket(value, step) if spec.type is float else value


def _known(card: Card | None, kind: str, name: str, value: str) -> str:
    """``value`` in the model's spelling when the serving model's card lists the tag's values."""
    if card is None or kind not in card.tags:
        return value
    try:
        return card.known_value(kind, name, value)
    except TagError as e:
        raise BadRequest(str(e)) from None
