"""Settings layered from a TOML file, the environment and flags, each value checked against its field's type.

A stage's settings are one dataclass. ``layer`` merges the sources (defaults < TOML < environment <
flags); ``coerce`` turns a TOML value or an environment string into the field's declared type, read
from the type itself (``int | None``, ``list[str]``, ...), so a new setting needs no parsing code.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from linernotes.common.errors import ConfigError
from linernotes.common.flags import choices_of

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parts(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); anything else -> (it, False)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0], len(rest) < len(typing.get_args(hint))
    return hint, False


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint)


def coerce(label: str, raw: Any, hint: Any) -> Any:
    """``raw`` (a TOML value, or an environment string) as a value of type ``hint``; a ConfigError that
    starts with ``label`` (where the value came from) when it is not one."""
    kind, optional = _parts(hint)
    if raw is None or (optional and isinstance(raw, str) and not raw.strip()):
        if optional:
            return None
        raise ConfigError(f"{label}: needs a value")
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind) or (str,)
        values = raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",") if s.strip()]
        return [coerce(label, v, item) for v in values]
    if kind is bool:
        return _boolean(label, raw)
    if kind in (int, float):
        if isinstance(raw, bool) or (kind is int and isinstance(raw, float)):
            raise ConfigError(f"{label}: {raw!r} is not an {_name(kind)}")
        try:
            return kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{label}: {raw!r} is not a{'n' if kind is int else ''} {_name(kind)}"
            ) from None
    if kind is str:
        if isinstance(raw, list | dict | bool):
            raise ConfigError(f"{label}: {raw!r} is not text")
        return str(raw)
    raise TypeError(f"{label}: no conversion to {hint!r}")  # a field type this module lacks: a bug


def _boolean(label: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ConfigError(
        f"{label}: {raw!r} is not true or false (use one of {', '.join(sorted(_TRUE | _FALSE))})"
    )


def read_toml(path: str | Path, table: str) -> dict[str, Any]:
    """The ``[table]`` of a TOML file (or its top level when it has no such table); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: file not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path}: {e}") from None
    found = data.get(table, data)
    if not isinstance(found, dict):
        raise ConfigError(f"--config {path}: [{table}] must be a table of settings")
    return found


def layer(
    cls: type,
    toml: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    prefix: str = "",
    where: str = "",
    env_label: str = "{key}",
    **flags: Any,
) -> dict[str, Any]:
    """The field values of ``cls`` from the TOML table, then ``prefix``-ed environment variables, then flags
    (a flag of None was not given); unknown TOML keys are an error naming the key and ``where``.

    A TOML or environment value must be of its field's type and, when the field's flag has ``choices``, one
    of them (argparse checks the flags). ``env_label`` names an environment value in errors: a format with
    ``{key}`` (the variable) and ``{name}`` (the setting).
    """
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    merged: dict[str, Any] = {}
    for key, value in (toml or {}).items():
        if key not in hints:
            raise ConfigError(f"{where}unknown setting {key!r}; settings are: {', '.join(by_name)}")
        merged[key] = _checked(f"{where}setting {key}", value, hints[key], by_name[key])
    for key, value in (env or {}).items():
        name = key[len(prefix) :].lower() if prefix and key.startswith(prefix) else None
        if name in hints:
            label = env_label.format(key=key, name=name)
            merged[name] = _checked(label, value, hints[name], by_name[name])
    merged.update({k: v for k, v in flags.items() if v is not None})
    return merged


def _checked(label: str, raw: Any, hint: Any, f: dataclasses.Field) -> Any:
    """``raw`` coerced to the field's type, and one of its flag's choices if it has them."""
    value = coerce(label, raw, hint)
    allowed = choices_of(f)
    for item in value if isinstance(value, list) else [value]:
        if allowed is not None and item is not None and item not in allowed:
            raise ConfigError(f"{label}: {item!r} is not one of {', '.join(map(str, allowed))}")
    return value
