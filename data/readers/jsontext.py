"""JSON parsed with bounded nesting, and JSON errors said both ways (CLI and plain).

Python's parser recurses once per level: a file nested 100,000 deep raises RecursionError, which no
reader expects. Nesting is measured before parsing and refused past ``MAX_DEPTH``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from linernotes.data.problems import SourceError

# Published formats nest 1 (Genius JSON) to 3 (review JSON lines) levels; Python's recursion limit
# (1,000 frames, shared with the caller's stack) is far above this.
MAX_DEPTH = 64
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')  # possessive: no backtracking on long strings
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def too_deep(text: str, first_only: bool = False) -> bool:
    """Whether ``text`` opens more than ``MAX_DEPTH`` arrays/objects inside each other (strings ignored);
    with ``first_only``, within its first array or object only (JSON lines go on after it)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # the common case, without a scan
    depth = 0
    for c in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if c in "[{" else -1
        if depth > MAX_DEPTH:
            return True
        if depth <= 0 and first_only:
            return False
    return False


def too_deep_error(where: str) -> SourceError:
    """The error for JSON nested past ``MAX_DEPTH`` in ``where``."""
    return SourceError(
        f"{where}: JSON nested deeper than {MAX_DEPTH} levels; not read",
        f"its JSON is nested deeper than {MAX_DEPTH} levels",
    )


def invalid_json(where: str, e: json.JSONDecodeError) -> SourceError:
    """The error for JSON that does not parse."""
    at = f"line {e.lineno}, column {e.colno}"
    return SourceError(f"{where}: invalid JSON at {at}: {e.msg}", f"it is not valid JSON ({e.msg} at {at})")


def loads(text: str, where: str) -> Any:
    """``json.loads`` refusing deep nesting (SourceError); a JSONDecodeError is left to the caller."""
    if too_deep(text):
        raise too_deep_error(where)
    return json.loads(text)


def raw_decode(text: str, where: str) -> Any:
    """The first JSON value in ``text`` (which may go on after it), refusing deep nesting."""
    # A first value that is no array or object nests nothing (and the brackets after it are not its).
    if text.lstrip()[:1] in ("[", "{") and too_deep(text, first_only=True):
        raise too_deep_error(where)
    return json.JSONDecoder().raw_decode(text)[0]
