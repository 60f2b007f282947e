"""The site as one aiohttp application, and ``Site``, which serves it on the running event loop: on its own
(``linernotes web``) or inside the bot's process (``web_port``).

aiohttp because it is already here (discord.py is built on it), runs on the bot's own event loop beside
the gateway, and serves a few small routes fast without a framework's weight; see docs/web.md.
Every request passes the guard first (size of its query, then the client's rate limit); errors with a
cause a visitor can fix answer 4xx with what was wrong, as JSON under /api/ and as a page elsewhere.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from linernotes.bot.storage import Database, StorageError
from linernotes.bot.web import api, pages, render
from linernotes.bot.web.config import WebConfig
from linernotes.bot.web.context import CONTEXT, REALM, Context
from linernotes.bot.web.errors import BadRequest, Forbidden, NotFound, Unauthorized
from linernotes.bot.web.ratelimit import RateLimiter
from linernotes.common.errors import ConfigError
from linernotes.model.card import Card

log = logging.getLogger(__name__)
MAX_QUERY = 1024  # characters of a query string: a few tag values need far fewer
MAX_PATH = 256  # characters of a path: the longest route is /api/g/ and a 24-character id
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HEADERS = {
    # No script, no frames, nothing from elsewhere: the pages need none, and generated text is untrusted.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def answer(request: web.Request, status: int, message: str, **extra: object) -> web.Response:
    """An error answer: JSON for the API, a page for people."""
    if request.path.startswith("/api/"):
        return web.json_response({"error": message, **extra}, status=status)
    return web.Response(text=render.error_page(status, message), status=status, content_type="text/html")


def guard(limiter: RateLimiter) -> Callable:
    """Refuse oversized requests and clients over their rate before any work."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.raw_path.partition("?")[0]
        if len(path) > MAX_PATH:
            return answer(request, 414, f"the path is {len(path)} characters long; at most {MAX_PATH}")
        if len(request.query_string) > MAX_QUERY:
            return answer(
                request, 400, f"the query is {len(request.query_string)} characters; at most {MAX_QUERY}"
            )
        wait = limiter.allow(request.remote or "")
        if wait:
            response = answer(request, 429, f"too many requests from your address; retry in {wait:.1f} s")
            response.headers["Retry-After"] = str(max(1, round(wait)))
            return response
        return await handler(request)

    return middleware


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn the site's errors into answers saying what was wrong; anything else is a bug (and a 500)."""
    try:
        return await handler(request)
    except (BadRequest, NotFound, Forbidden) as e:
        return answer(request, e.status, str(e), **getattr(e, "extra", {}))
    except Unauthorized as e:
        response = answer(request, e.status, str(e))
        response.headers["WWW-Authenticate"] = REALM
        return response
    except web.HTTPException as e:  # aiohttp's own: no such route, method not allowed
        if e.status < 400:
            raise
        response = answer(request, e.status, e.reason)
        if "Allow" in e.headers:
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except StorageError as e:  # a busy or vanished database: not the visitor's doing
        log.warning("the site could not read the database: %s", e)
        return answer(request, 503, "the database is busy; try again shortly")


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)


def build_app(context: Context) -> web.Application:
    """The site's application over ``context``."""
    app = web.Application(middlewares=[guard(RateLimiter(context.config.rate, context.config.burst)), errors])
    app[CONTEXT] = context
    pages.routes(app)  # first: /api/stats before the API's /api/{kind}
    api.routes(app)
    app.on_response_prepare.append(_headers)
    return app


class Site:
    """The site served on the running event loop until ``stop``."""

    def __init__(
        self, db: Database, config: WebConfig, card: Callable[[], Card | None] = lambda: None
    ) -> None:
        token = os.environ.get(config.operator_env) or None  # read once; never logged or stored
        self.context = Context(db, config, card, token)
        self._runner: web.AppRunner | None = None
        self.address = ""

    async def start(self) -> str:
        """Listen on the configured host and port; the address it serves (its own, not the public URL)."""
        # No access log: it would record every visitor's address, which the site keeps nowhere else.
        self._runner = web.AppRunner(build_app(self.context), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.context.config.host, self.context.config.port, reuse_address=True
        )
        try:
            await site.start()
        except OSError as e:
            await self.stop()
            raise ConfigError(
                f"can't listen on {self.context.config.host}:{self.context.config.port} ({e.strerror})"
            ) from None
        host, port = self._runner.addresses[0][:2]
        self.address = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        return self.address

    @property
    def url(self) -> str:
        """The site's public base URL (configured), else the address it serves."""
        return self.context.config.url or self.address

    async def stop(self) -> None:
        """Write the request counts gathered and stop listening (idempotent)."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        try:
            await self.context.store.flush_counts(force=True)
        except (
            StorageError,
            RuntimeError,
        ) as e:  # the database closed first: counts of the last seconds lost
            log.warning("request counts of the last seconds could not be written: %s", e)
        await runner.cleanup()
