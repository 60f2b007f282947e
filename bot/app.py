"""The bot: the one place that wires the pieces (database, worker, request handler, admin service,
commands, the Another button), its lifecycle (``setup_hook`` opens, ``close`` closes in reverse) and
its event handlers. Nothing in ``bot`` imports this module; ``cli`` starts the bot through it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from discord.ext import commands

from linernotes.bot import commands as slash
from linernotes.bot.admin import Admin
from linernotes.bot.cache import Key
from linernotes.bot.config import BotConfig, generate_config
from linernotes.bot.errors import report
from linernotes.bot.model_commands import channel_notifier
from linernotes.bot.models import ServerModels
from linernotes.bot.registry import ModelRegistry, ServerModel
from linernotes.bot.serve import RequestHandler
from linernotes.bot.storage import Database, Generation
from linernotes.bot.views import AnotherButton
from linernotes.model.card import Card
from linernotes.model.generator import Generator, Request, Result
from linernotes.model.worker import GenerationWorker

if TYPE_CHECKING:  # the website (aiohttp's server) loads only when web_port asks for it
    from linernotes.bot.web.app import Site

log = logging.getLogger(__name__)
WARM_JOB = "linernotes-warm"
SYNC_JOB = "linernotes-sync"
# The bot never joins voice: discord.py's start-up warnings about voice libraries are noise here.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False


def intents() -> discord.Intents:
    """Only what the bot uses: guilds (for commands) and reactions (for ratings). No message content."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_reactions = True
    return wanted


class LinernotesBot(commands.AutoShardedBot):
    """Slash commands over a cache of generations; one shard or thousands without code changes."""

    def __init__(self, config: BotConfig, **client_options) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **(config.shards() | client_options),  # the settings' shards, unless a caller chose (tests)
        )
        self.config = config
        # discord.py 2.7: AutoShardedClient.close() puts to a queue that only connect() creates, so closing a
        # bot whose login failed (a bad token) would raise AttributeError and hide the real error.
        self._AutoShardedClient__queue = asyncio.PriorityQueue()
        self.db = Database(config.database)
        self.worker: GenerationWorker | None = None
        self.requests: RequestHandler | None = None  # the Another button finds it here
        self.admin: Admin | None = None
        self.models: ServerModels | None = None  # each server's own adapters (config.server_models)
        self.scheduler: AsyncIOScheduler | None = None
        self.site: Site | None = None  # the website, when web_port is set
        self.tree.on_error = self._on_tree_error

    # --- lifecycle ----------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        """Open the database, load the model on the worker thread, wire the services, register
        commands, start warming. Run again on the same bot (a simulated restart), it keeps the model."""
        await self.db.open()
        log.info("bot settings: %s", json.dumps(self.config.to_dict(), ensure_ascii=False))
        if self.worker is None:
            loop = asyncio.get_running_loop()
            generator = await loop.run_in_executor(None, self._load, self.config.checkpoint)
            c = self.config
            self.worker = GenerationWorker(generator, c.queue_size, c.max_queued_per_user, c.job_timeout)
            self.worker.start()
        # Adapters go on a whole model: a checkpoint that is itself an unmerged adapter takes none.
        if self.config.server_models and self.models is None and not self.worker.card.adapter:
            notifier = channel_notifier(self)  # the trainer tells members whose upload another process took
            self.models = ServerModels(self.config, ModelRegistry(self.db), self.worker, notifier)
            await self.models.start()
        router = self.models.route if self.models else None
        self.requests = RequestHandler(self.db, self.worker, self.config, router)
        in_use = self.models.in_use if self.models else list
        self.admin = Admin(
            self.config, self.db, self.worker, self._load, self._after_reload, self.is_owner, in_use
        )
        self.add_dynamic_items(AnotherButton)
        await self._install_commands(self.worker.card)
        # What `linernotes web` serves from when it is given no checkpoint.
        await self.db.set_meta("serving_model", self.worker.card.model_id)
        if self.config.web_port is not None and self.site is None:
            await self._start_site()
        await self.admin.follow_reload()  # notes the store's last /reload (a process started since follows)
        if self.scheduler is None:
            self._start_scheduler()

    def _start_scheduler(self) -> None:
        """The warm-up every ``warm_interval`` and the look at the store every ``sync_interval`` (either 0:
        not scheduled; neither: no scheduler)."""
        c, now = self.config, dt.datetime.now(dt.UTC)
        jobs = [(self.warm_job, WARM_JOB, c.warm_interval, min(60.0, c.warm_interval))]
        jobs.append((self.sync_job, SYNC_JOB, c.sync_interval, c.sync_interval))
        jobs = [j for j in jobs if j[2] > 0]
        if not jobs:
            return
        self.scheduler = AsyncIOScheduler(timezone=dt.UTC)
        for job, name, every, first in jobs:
            self.scheduler.add_job(
                job, "interval", seconds=every, id=name, max_instances=1, coalesce=True,
                next_run_time=now + dt.timedelta(seconds=first),
            )  # fmt: skip
        self.scheduler.start()

    async def _start_site(self) -> None:
        """Serve the website on this event loop, from the model the worker serves (reloads followed)."""
        from linernotes.bot.config import web_settings
        from linernotes.bot.web.app import Site

        worker = self.worker
        assert worker is not None
        site = Site(self.db, web_settings(self.config), lambda: worker.card)
        address = await site.start()
        self.site = site
        log.info("website on %s%s", address, f" (public address {site.url})" if site.url != address else "")

    async def close(self) -> None:
        """Stop the website, the scheduler, the worker (queued jobs cancelled, the running one finished),
        the database."""
        if self.site is not None:
            await self.site.stop()
            self.site = None
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.models is not None:
            await self.models.close()  # its training child first: it is the slowest thing to stop
            self.models = None
        if self.worker is not None:
            await self.worker.stop()
        await self.db.close()
        await super().close()

    async def _after_reload(self, card: Card) -> None:
        """A new model is serving: attach the server adapters trained on it, and follow its card."""
        if self.models is not None:
            await self.models.reattach()
        await self._install_commands(card)
        await self.db.set_meta("serving_model", card.model_id)

    def _load(self, checkpoint: str) -> Generator:
        return Generator.load(checkpoint, generate_config(self.config))

    async def _install_commands(self, card: Card) -> None:
        """Register the commands this card calls for, and sync them when they changed (or as configured)."""
        assert self.requests is not None and self.admin is not None
        self.tree.clear_commands(guild=None)
        c = self.config
        for command in slash.build(
            card, self.requests, self.admin, c.admin_permission, c.reactions, self.models
        ):
            self.tree.add_command(command)
        if self.config.sync == "off":
            return
        guild = discord.Object(int(self.config.sync)) if self.config.sync.isdigit() else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = json.dumps(
            [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)], sort_keys=True
        )
        digest = hashlib.sha256(f"{self.config.sync}:{payload}".encode()).hexdigest()
        # Commands live with the Discord application: remember what was synced per application id.
        meta_key = f"commands_hash:{self.application_id}"
        if self.config.sync == "always" or await self.db.get_meta(meta_key) != digest:
            await self.tree.sync(guild=guild)
            await self.db.set_meta(meta_key, digest)
            log.info("synced %d commands", len(self.tree.get_commands(guild=guild)))

    # --- model work ---------------------------------------------------------------------------

    async def warm_job(self) -> int:
        """The scheduled job: wait until ready, then top up the cache through the worker."""
        await self.wait_until_ready()
        return await self.warm_now()

    async def sync_job(self) -> None:
        """The scheduled look at the store: what other processes trained, chose, deleted or reloaded."""
        await self.wait_until_ready()
        await self.sync_now()

    async def sync_now(self) -> None:
        """Follow the store now: server models (``ServerModels.sync``), then another process's /reload."""
        assert self.admin is not None
        if self.models is not None:
            await self.models.sync()
        await self.admin.follow_reload()

    async def warm_now(self, keys: Sequence[Key] | None = None) -> int:
        """Top up the cache (or only ``keys``) now (``Admin.warm``: one run at a time); returns how many
        were stored."""
        assert self.admin is not None
        return await self.admin.warm(keys)

    # --- what the CLI, the demo and the benchmarks use (never the services behind them) ---------------

    async def open_database(self) -> None:
        """Open and migrate the database now, so a bad one is reported before connecting (idempotent)."""
        await self.db.open()

    @property
    def card(self) -> Card:
        """The card of the model now serving (the bot must have started)."""
        assert self.worker is not None
        return self.worker.card

    async def generate(self, requests: list[Request]) -> list[Result]:
        """Generate through the worker's queue, as a person's request would."""
        assert self.worker is not None
        return await self.worker.submit(requests)

    async def keep(self, result: Result, cache_key: str, origin: str = "warm") -> int:
        """Store a generation in the cache under ``cache_key``; its id."""
        return await self.db.add(result, cache_key, origin)

    async def cache_depth(self) -> dict[str, int]:
        """Never-delivered generations of the model now serving, per cache key."""
        return await self.db.depth(self.card.model_id)

    async def generation(self, generation_id: int) -> Generation | None:
        """One stored generation by id."""
        return await self.db.get(generation_id)

    async def places(self, generation_id: int) -> list[dict[str, Any]]:
        """Where a generation was posted, in any server, first first (message, channel and guild ids)."""
        return await self.db.deliveries_of(generation_id)

    async def votes(self, generation_id: int) -> tuple[int, int]:
        """(approvals, rejections) of one generation."""
        return await self.db.votes(generation_id)

    @property
    def site_url(self) -> str | None:
        """The website's base URL while it is served (its public one when configured), else None."""
        return self.site.url if self.site is not None else None

    async def web_link(self, generation_id: int) -> str | None:
        """A generation's permalink on the website, when the site is served and the generation is public."""
        if self.site is None:
            return None
        from linernotes.bot.web.privacy import permalink, public_id_of

        public = await public_id_of(self.db, generation_id)
        return permalink(self.site.url, public) if public else None

    async def server_models(self, guild_id: int) -> list[tuple[ServerModel, bool, str | None]] | None:
        """A server's models as /model list shows them (each with whether it is in use and why a ready one
        is not served); None when this bot serves no server models."""
        return None if self.models is None else await self.models.listing(guild_id)

    # --- events -------------------------------------------------------------------------------

    async def _on_tree_error(
        self, interaction: discord.Interaction, error: discord.app_commands.AppCommandError
    ) -> None:
        await report(interaction, error)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """A rating: one vote per user per generation; the bot's own reactions are not votes."""
        await self._rate(payload, add=True)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A withdrawn rating."""
        await self._rate(payload, add=False)

    async def _rate(self, payload: discord.RawReactionActionEvent, add: bool) -> None:
        if self.user is not None and payload.user_id == self.user.id:
            return
        emoji = str(payload.emoji)
        if emoji not in self.config.reactions:
            return
        vote = 1 if emoji == self.config.reactions[0] else -1
        await self.db.record_reaction(payload.message_id, self.db.user_hash(payload.user_id), vote, add)


def create_bot(checkpoint: str | Path, database: str | Path, **settings) -> LinernotesBot:
    """An unstarted bot for ``checkpoint`` storing into ``database``; ``settings`` are BotConfig fields
    plus discord.py client options (e.g. ``shard_count``)."""
    from dataclasses import fields

    names = {f.name for f in fields(BotConfig)}
    config = BotConfig(
        checkpoint=str(checkpoint),
        database=str(database),
        **{k: v for k, v in settings.items() if k in names},
    )
    client = {k: v for k, v in settings.items() if k not in names}
    return LinernotesBot(config, **client)
