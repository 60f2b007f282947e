"""The project's exception hierarchy.

Every error a user can fix is a ``LinernotesError`` whose ``str()`` is the message shown to them:
it names the file, row, field or option at fault. The CLI and the bot's error handler turn these into
user-facing text in one place each; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LinernotesError(Exception):
    """A problem the user can fix; the message says what and where."""


class InputError(LinernotesError):
    """A data source cannot be read as asked (missing file, unknown format, bad column, empty result)."""


class FormatError(LinernotesError):
    """A record or header does not fit the tag format."""


class TagError(LinernotesError):
    """A requested tag value is not one the model knows."""


class ConfigError(LinernotesError):
    """An option or setting has an invalid value."""


class CheckpointError(LinernotesError):
    """A checkpoint or run directory is missing, corrupted, or from an incompatible version."""


class AdapterError(CheckpointError):
    """An adapter checkpoint that cannot be served. ``str()`` names it (for the operator); ``reason`` says
    what is wrong inside it without where it lies (for a server's members, who never see host paths)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    @classmethod
    def of(cls, path: object, reason: str) -> AdapterError:
        """The error for the adapter checkpoint at ``path``."""
        return cls(f"{path}: {reason}", reason)


class GenerationError(LinernotesError):
    """Generation could not produce an acceptable text."""
