"""The bot: its lifecycle (``setup_hook`` opens, ``close`` closes in reverse) and its event handlers."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from pathlib import Path

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from discord.ext import commands

from bot import commands as slash
from bot.config import BotConfig, generate_config
from bot.errors import report
from bot.serve import Server
from bot.storage import Database, Scope
from bot.views import AnotherButton
from bot.warm import warm_as_configured
from data.errors import LinernotesError
from model.card import Card
from model.generator import Generator
from model.worker import GenerationWorker

log = logging.getLogger(__name__)
WARM_JOB = "linernotes-warm"
# The bot never joins voice: discord.py's start-up warnings about voice libraries are noise here.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
RELOAD_REFUSED = "Reload refused: only the bot's operators may reload, and only a checkpoint from its checkpoint directory."


class ReloadRefused(LinernotesError):
    """/reload by someone who may not, or of a checkpoint outside the allowed directory (one message for all)."""

    def __init__(self) -> None:
        super().__init__(RELOAD_REFUSED)


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
            **client_options,
        )
        self.config = config
        # discord.py 2.7: AutoShardedClient.close() puts to a queue that only connect() creates, so closing a
        # bot whose login failed (a bad token) would raise AttributeError and hide the real error.
        self._AutoShardedClient__queue = asyncio.PriorityQueue()
        self.db = Database(config.database)
        self.worker: GenerationWorker | None = None
        self.server: Server | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self._warming = asyncio.Lock()  # one warm-up at a time, whoever starts it
        self.tree.on_error = self._on_tree_error

    # --- lifecycle ----------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        """Open the database, load the model on the worker thread, register commands, start warming."""
        await self.db.open()
        log.info("bot settings: %s", json.dumps(self.config.to_dict(), ensure_ascii=False))
        generator = await asyncio.get_running_loop().run_in_executor(None, self._load, self.config.checkpoint)
        c = self.config
        self.worker = GenerationWorker(generator, c.queue_size, c.max_queued_per_user, c.job_timeout)
        self.worker.start()
        self.server = Server(self.db, self.worker, self.config)
        self.add_dynamic_items(AnotherButton)
        await self._install_commands(generator.card)
        if self.config.warm_interval > 0:
            self.scheduler = AsyncIOScheduler(timezone=dt.UTC)
            self.scheduler.add_job(
                self.warm_job,
                "interval",
                seconds=self.config.warm_interval,
                id=WARM_JOB,
                max_instances=1,
                coalesce=True,
                next_run_time=dt.datetime.now(dt.UTC)
                + dt.timedelta(seconds=min(60.0, self.config.warm_interval)),
            )
            self.scheduler.start()

    async def close(self) -> None:
        """Stop the scheduler, the worker (queued jobs cancelled, the running one finished), the database."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.worker is not None:
            await self.worker.stop()
        await self.db.close()
        await super().close()

    def _load(self, checkpoint: str) -> Generator:
        return Generator.load(checkpoint, generate_config(self.config))

    async def _install_commands(self, card: Card) -> None:
        """Register the commands this card calls for, and sync them when they changed (or as configured)."""
        self.tree.clear_commands(guild=None)
        for command in slash.build(self, card):
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

    async def warm_now(self) -> int:
        """Top up every cache key to its depth now; returns how many generations were stored.

        Runs one at a time (a second caller waits, then finds the cache full): each run plans from
        the cache's depth, so two at once would both fill the same shortfall.
        """
        assert self.worker is not None
        async with self._warming:
            return await warm_as_configured(self.config, self.db, self.worker, limit=self.config.warm_limit)

    async def may_reload(self, user: discord.abc.User) -> bool:
        """Whether ``user`` may swap the model: an owner of the application, or a configured operator."""
        if str(user.id) in {str(o) for o in self.config.operators}:
            return True
        return await self.is_owner(user)

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

    async def reload_model(self, user: discord.abc.User | None, checkpoint: str | None = None) -> Card:
        """Load a checkpoint on the worker thread and swap it in; commands follow the new card.

        ``user`` None is the operator at the console. Every refusal raises the same ``ReloadRefused``,
        so the answer tells nobody which paths exist; the reason goes to the log.
        """
        assert self.worker is not None
        if user is not None and not await self.may_reload(user):
            log.info("reload refused: user %s is not an owner or operator", user.id)
            raise ReloadRefused
        target = self.reload_target(checkpoint)
        if target is None:
            log.info("reload refused: %r is not a checkpoint under checkpoints_dir", checkpoint)
            raise ReloadRefused
        path = str(target)
        generator = await self.worker.submit_call(lambda: self._load(path))
        self.worker.generator = generator
        self.config.checkpoint = path
        await self._install_commands(generator.card)
        log.info("now serving %s", generator.card.model_id)
        return generator.card

    async def stats_embed(self, scope: Scope) -> discord.Embed:
        """The ``/stats`` embed: what this server was served and how it rated it; the shared cache."""
        assert self.worker is not None
        card = self.worker.generator.card
        totals = await self.db.totals(scope)
        depth = await self.db.depth(card.model_id)
        rated = totals["up"] + totals["down"]
        approval = f" ({totals['up'] / rated:.0%} approval)" if rated else ""
        embed = discord.Embed(title="linernotes stats", colour=discord.Colour.blurple())
        embed.add_field(
            name="Served", value=f"{totals['served']} answers from {totals['generations']} generations"
        )
        up, down = self.config.reactions
        embed.add_field(name="Ratings", value=f"{up} {totals['up']} · {down} {totals['down']}{approval}")
        embed.add_field(name="Queue", value=f"{self.worker.depth} jobs")
        lines = [f"`{key}` {n}" for key, n in sorted(depth.items(), key=lambda kv: (-kv[1], kv[0]))[:15]]
        embed.add_field(
            name=f"Cache ({sum(depth.values())} ready, {len(depth)} keys)",
            value="\n".join(lines) or "empty",
            inline=False,
        )
        embed.set_footer(text=card.model_id)
        return embed

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
