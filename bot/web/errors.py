"""What the site answers when it cannot serve a request: each error carries its HTTP status and a message
saying what was wrong (and, for the API, anything that helps: the keys that exist)."""

from __future__ import annotations

from typing import Any

from linernotes.common.errors import InputError, LinernotesError


class BadRequest(InputError):
    """A request's parameters cannot be served as asked (400); the message says which one and why."""

    status = 400


class NotFound(LinernotesError):
    """Nothing public answers this request (404); ``extra`` goes into the API's answer beside the message."""

    status = 404

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


class Unauthorized(LinernotesError):
    """The operator view without the operator's token (401: the browser asks for it)."""

    status = 401


class Forbidden(LinernotesError):
    """The operator view while no token is set (403)."""

    status = 403


WebError = BadRequest | NotFound | Unauthorized | Forbidden
