"""What every handler of the site shares: the database and its web view, the settings, the model served,
the batched takes and the operator's token."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from aiohttp import web

from linernotes.bot.batch import Batcher
from linernotes.bot.storage import Database
from linernotes.bot.web.config import WebConfig
from linernotes.bot.web.errors import Forbidden, Unauthorized
from linernotes.bot.web.params import Query
from linernotes.bot.web.store import WebStore
from linernotes.model.card import Card

REALM = 'Basic realm="linernotes operators", charset="UTF-8"'


class Takes(NamedTuple):
    """Requests that are served together by one take: same model, same keys, same query."""

    model_id: str
    keys: tuple[str, ...]
    query: Query


@dataclass
class Context:
    """The site's state (one per app)."""

    db: Database
    config: WebConfig
    card: Callable[[], Card | None] = lambda: None  # the model served: the bot's worker, or a checkpoint's
    token: str | None = field(default=None, repr=False)  # the operator view's; never logged
    store: WebStore = field(init=False)
    batcher: Batcher[Takes, None, int] = field(init=False)

    def __post_init__(self) -> None:
        self.store = WebStore(self.db)
        self.batcher = Batcher(self._take)

    async def _take(self, group: Takes, requests: list[None]) -> list[int]:
        return await self.store.take(group.model_id, list(group.keys), len(requests), group.query.as_params())

    async def model(self) -> tuple[str | None, Card | None]:
        """The id (and card, when known) of the model the API serves from: the bot's own model now."""
        card = self.card()
        if card is not None:
            return card.model_id, card
        return await self.store.serving_model(), None

    def base_url(self, request: web.Request) -> str:
        """The site's public base URL: the configured one, else the one this request came to."""
        return self.config.url or f"{request.scheme}://{request.host}"

    def check_operator(self, request: web.Request) -> None:
        """Let the operator through (the token as a Bearer token or a Basic password); refuse anyone else."""
        if not self.token:
            raise Forbidden("The operator view is off: no token is set where the site was started.")
        given = _credential(request.headers.get("Authorization", ""))
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Unauthorized("The operator view needs the operator's token.")


def _credential(header: str) -> str | None:
    """The token in an Authorization header: ``Bearer TOKEN`` or ``Basic base64(anyone:TOKEN)``."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


CONTEXT = web.AppKey("linernotes", Context)
