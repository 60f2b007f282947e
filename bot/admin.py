"""Operating the bot: warm-up, model reloads, and the records ``/show`` and ``/stats`` report.

``Admin`` is what the admin and information commands use; it knows nothing of Discord's command tree
(``app.py`` hands it the few things it needs from the client: who owns the application, how to load
a checkpoint, and what follows a reload: server adapters re-attached, commands re-registered).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.bot.cache import Key
from linernotes.bot.config import BotConfig
from linernotes.bot.storage import Database, Scope
from linernotes.bot.warm import warm_as_configured
from linernotes.bot.web.privacy import permalink, public_id_of
from linernotes.common.errors import LinernotesError
from linernotes.model.card import Card
from linernotes.model.generator import Generator
from linernotes.model.worker import GenerationWorker

log = logging.getLogger(__name__)
RELOAD = "reload"  # the meta key of the store's last /reload: {"checkpoint": path, "at": epoch seconds}
RELOAD_REFUSED = "Reload refused: only the bot's operators may reload, and only a checkpoint from its checkpoint directory."


class ReloadRefused(LinernotesError):
    """/reload by someone who may not, or of a checkpoint outside the allowed directory (one message for all)."""

    def __init__(self) -> None:
        super().__init__(RELOAD_REFUSED)


@dataclass(frozen=True)
class Stats:
    """What ``/stats`` shows: one server's deliveries and ratings, and the shared cache and queue."""

    totals: dict[str, int]
    depth: dict[str, int]
    queued: int
    model_id: str


class Admin:
    """Warm-up (one run at a time), reloads (owners and operators only), and read-only records."""

    def __init__(
        self,
        config: BotConfig,
        db: Database,
        worker: GenerationWorker,
        load: Callable[[str], Generator],
        after_reload: Callable[[Card], Awaitable[None]],
        is_owner: Callable[[Any], Awaitable[bool]],
        in_use: Callable[[], list[tuple[str, Card]]] = list,
    ) -> None:
        self.config, self.db, self.worker = config, db, worker
        self._load, self._after_reload, self._is_owner = load, after_reload, is_owner
        self._in_use = in_use  # server models some server uses: warmed after the bot's own
        self._warming = asyncio.Lock()
        self._reload_seen: float | None = None  # when the store's last /reload was, as this process last saw

    async def warm(self, keys: Sequence[Key] | None = None) -> int:
        """Top up every cache key (or only ``keys``) to its depth now; returns how many generations were
        stored.

        Runs one at a time (a second caller waits, then finds the cache full): each run plans from
        the cache's depth, so two at once would both fill the same shortfall.
        """
        async with self._warming:
            return await warm_as_configured(
                self.config,
                self.db,
                self.worker,
                limit=self.config.warm_limit,
                adapters=self._in_use(),
                keys=keys,
            )

    async def may_reload(self, user: Any) -> bool:
        """Whether ``user`` may swap the model: an owner of the application, or a configured operator."""
        if str(user.id) in {str(o) for o in self.config.operators}:
            return True
        return await self._is_owner(user)

    def reload_target(self, checkpoint: str | None) -> Path | None:
        """The checkpoint directory ``checkpoint`` names if it may be loaded, else None: inside
        ``checkpoints_dir`` (by name or path, symlinks resolved), or the current checkpoint."""
        current = Path(self.config.checkpoint).resolve()
        if checkpoint is None:
            return current
        if self.config.checkpoints_dir is None:
            return current if Path(checkpoint).resolve() == current else None
        root = Path(self.config.checkpoints_dir).resolve()
        target = (root / checkpoint).resolve()
        if root not in target.parents or not (target / "card.json").is_file():
            return None
        return target

    async def reload(self, user: Any | None, checkpoint: str | None = None) -> Card:
        """Load a checkpoint on the worker thread and swap it in; commands follow the new card.

        ``user`` None is the operator at the console. Every refusal raises the same ``ReloadRefused``,
        so the answer tells nobody which paths exist; the reason goes to the log.
        """
        if user is not None and not await self.may_reload(user):
            log.info("reload refused: user %s is not an owner or operator", user.id)
            raise ReloadRefused
        target = self.reload_target(checkpoint)
        if target is None:
            log.info("reload refused: %r is not a checkpoint under checkpoints_dir", checkpoint)
            raise ReloadRefused
        card = await self._swap(str(target))
        # Every process on this store follows (``follow_reload``): the path must be one they all see.
        self._reload_seen = time.time()
        await self.db.set_meta(RELOAD, json.dumps({"checkpoint": str(target), "at": self._reload_seen}))
        return card

    async def _swap(self, path: str) -> Card:
        card = await self.worker.swap(lambda: self._load(path))
        self.config.checkpoint = path
        await self._after_reload(card)
        log.info("now serving %s", card.model_id)
        return card

    async def follow_reload(self) -> Card | None:
        """Load the checkpoint another process on this store reloaded to (its ``/reload``), once; the new
        card, or None when there is nothing new. The first look (at start-up) only notes where things are."""
        found = await self.db.get_meta(RELOAD)
        latest = json.loads(found) if found else {"checkpoint": self.config.checkpoint, "at": 0.0}
        seen, self._reload_seen = self._reload_seen, latest["at"]
        elsewhere = Path(latest["checkpoint"]).resolve() != Path(self.config.checkpoint).resolve()
        if seen is None and elsewhere:
            log.warning("the last /reload on this store chose %s; this process serves %s as configured",
                        latest["checkpoint"], self.config.checkpoint)  # fmt: skip
        if seen is None or latest["at"] <= seen or not elsewhere:
            return None
        log.info("another process reloaded to %s: following", latest["checkpoint"])
        return await self._swap(latest["checkpoint"])

    async def stats(self, scope: Scope) -> Stats:
        """This server's figures, with the shared cache's depth and the queue."""
        model_id = self.worker.card.model_id
        return Stats(await self.db.totals(scope), await self.db.depth(model_id), self.worker.depth, model_id)

    async def places(self, generation_id: int, scope: Scope) -> list[dict[str, Any]]:
        """Where a generation was posted within ``scope``, first first."""
        return await self.db.deliveries_of(generation_id, scope)

    async def web_link(self, generation_id: int) -> str | None:
        """A generation's permalink under the website's public base URL, when one is configured and the
        generation is public; None otherwise."""
        if not self.config.web_url:
            return None
        public = await public_id_of(self.db, generation_id)
        return permalink(self.config.web_url, public) if public else None
