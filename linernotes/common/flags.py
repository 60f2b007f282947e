"""Command-line flags derived from a stage's config dataclass: each field's type, default and help, once.

A field declared as ``field(default=8, metadata=flag("help"))`` becomes ``--field-name`` (``--no-field-name``
for a boolean that defaults to true); ``add_flags`` adds one flag per field and ``from_args`` builds the config
back from the parsed flags, so a new setting is written in one place and every command that takes the
config gets it. (Like ``transformers.HfArgumentParser``, but in the data layer, which every stage imports.)
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from linernotes.common.errors import ConfigError

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def flag(
    help: str,
    *,
    name: str | None = None,
    positional: bool = False,
    one_of: str | None = None,
    convert: Callable[[Any], Any] | None = None,
    **argparse_settings: Any,
) -> dict[str, Any]:
    """A field's flag, as ``dataclasses.field`` metadata: help, and any ``add_argument`` settings.

    ``name`` renames the flag (default ``--field-name``); ``one_of`` names a group of alternatives, the
    fields sharing it, of which exactly one flag must be given (such as two sources of the same data);
    ``convert`` turns the parsed value into the field's value (for a value that needs parsing beyond its
    type, such as ``text=review`` pairs).
    """
    return {
        "help": help,
        "flag": name,
        "positional": positional,
        "one_of": one_of,
        "convert": convert,
        "argparse": argparse_settings,
    }


def _unwrap_optional(hint: Any) -> Any:
    """``X | None`` -> ``X``; anything else as it is."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _default(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return _MISSING


def _by_type(hint: Any, default: Any, positional: bool) -> dict[str, Any]:
    """The ``add_argument`` settings a field's type implies."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        # A switch: off by default turns on with --name; on by default turns off with --no-name.
        return {"action": "store_false" if default else "store_true"}
    if origin is list and not positional:
        return {"action": "append", "type": args[0] if args else str}  # --flag a --flag b
    if origin in (list, tuple):
        return {"nargs": "+", "type": args[0] if args else str}
    if origin is dict:
        return {}  # the field's ``convert`` parses the strings given
    return {"type": hint}


def _flag(f: dataclasses.Field, hint: Any) -> str:
    """``--batch-size``, or ``--no-progress`` for a switch that is on by default."""
    if f.metadata["flag"]:
        return f.metadata["flag"]
    name = f.name.replace("_", "-")
    return f"--no-{name}" if hint is bool and f.default is True else f"--{name}"


def _help(text: str, default: Any) -> str:
    """The help text, with the default where it says something (not None, a switch's or a collection's)."""
    if default is None or default is _MISSING or isinstance(default, bool | list | dict | tuple):
        return text
    # The value itself, not %(default)s: a layered flag's argparse default is None, not the field's.
    return f"{text}; default {str(default).replace('%', '%%')}"


def choices_of(f: dataclasses.Field) -> Collection[Any] | None:
    """The values a field's flag allows (its ``choices``), or None when any value of its type goes."""
    return f.metadata.get("argparse", {}).get("choices")


def check_choices(config: Any) -> None:
    """Raise ``ConfigError`` naming the flag and its choices for any field of ``config`` (a dataclass built
    in code, not parsed) set outside its flag's ``choices``; None is left to the field's own meaning."""
    for f in dataclasses.fields(config):
        allowed, value = choices_of(f), getattr(config, f.name)
        if allowed is not None and value is not None and value not in allowed:
            name = _flag(f, None)
            raise ConfigError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    exclude: Collection[str] = (),
    layered: bool = False,
) -> None:
    """One flag per field of the dataclass ``cls``, except those in ``exclude``; ``parser`` may be a group.

    Every other field must carry ``flag`` metadata: a setting is either a flag or left out on purpose.
    ``layered``: the flags sit on top of other sources (a settings file, the environment), so an unset
    flag parses as None, a required field may come from those sources, and a switch has both forms
    (``--name`` / ``--no-name``).
    """
    hints = typing.get_type_hints(cls)
    groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        if "help" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} has no flag(...) metadata: give it one or exclude it")
        hint, default = _unwrap_optional(hints[f.name]), _default(f)
        settings = _by_type(hint, default, f.metadata["positional"])
        settings["help"] = _help(f.metadata["help"], f.metadata["argparse"].get("default", default))
        settings |= f.metadata["argparse"]
        if layered:
            _layer(parser, f, hint, settings)
            continue
        target = _one_of(parser, groups, f) if f.metadata.get("one_of") else parser
        if f.metadata["positional"]:
            target.add_argument(f.name, **settings)
            continue
        if default is _MISSING:
            settings["required"] = True
        elif "action" not in settings and "nargs" not in settings:
            # For --help; lists and tuples stay None until given. A ``default=`` in the metadata wins: None
            # there means "not given", for a field whose real default comes from elsewhere (a card).
            settings.setdefault("default", default)
        target.add_argument(_flag(f, hint), dest=f.name, **settings)


def _one_of(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    groups: dict[str, argparse._MutuallyExclusiveGroup],
    f: dataclasses.Field,
) -> argparse._MutuallyExclusiveGroup:
    """The required mutually exclusive group named by the field's ``one_of``, made on its first field."""
    if _default(f) is _MISSING:
        # argparse refuses a required flag in a group; the group itself is what is required.
        raise TypeError(f"{f.name}: a one_of field needs a default (None: not the alternative given)")
    name = f.metadata["one_of"]
    if name not in groups:
        groups[name] = parser.add_mutually_exclusive_group(required=True)
    return groups[name]


def _layer(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    f: dataclasses.Field,
    hint: Any,
    settings: dict[str, Any],
) -> None:
    """A flag whose absence means "take the value from the layers below" (None)."""
    if f.metadata.get("one_of"):  # a required choice of flags contradicts a value from the layers below
        raise TypeError(f"{f.name}: one_of is for plain flags, not layered ones")
    settings["default"] = None
    if hint is bool:
        settings["action"] = argparse.BooleanOptionalAction
        if isinstance(_default(f), bool):  # both --x and --no-x exist, so neither name tells the default
            settings["help"] += f"; default {'on' if _default(f) else 'off'}"
    if f.metadata["positional"]:
        parser.add_argument(f.name, nargs="?", **settings)
        return
    name = f.metadata["flag"] or f"--{f.name.replace('_', '-')}"
    parser.add_argument(name, dest=f.name, **settings)


def from_args(cls: type[T], args: argparse.Namespace, **override: Any) -> T:
    """The ``cls`` the parsed flags describe; a field whose flag was not given (or absent) keeps its default."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if f.name in override or value is None:
            continue
        tupled = typing.get_origin(_unwrap_optional(hints[f.name])) is tuple
        convert = f.metadata.get("convert") or (tuple if tupled else None)
        values[f.name] = convert(value) if convert else value
    return cls(**values, **override)
