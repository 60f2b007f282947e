"""Input problems said two ways: for the operator (file paths, options) and in terms of the data alone.

``str()`` of a ``SourceError`` is the CLI's message; ``plain`` says what is wrong with the file's content
without a host path or an option, so a front end whose users can change only the file (the bot's
uploads) can tell them what to change without rewording the CLI's text.
"""

from __future__ import annotations

from linernotes.common.errors import InputError


class SourceError(InputError):
    """A source whose content cannot be used; ``plain`` says why without paths or options."""

    def __init__(self, message: str, plain: str) -> None:
        super().__init__(message)
        self.plain = plain
