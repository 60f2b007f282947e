"""Pre-warming: keep every cache key at its target depth, deepest for the keys people ask for most.

The same function serves the scheduled job, ``/warm`` and ``linernotes warm``; all of them hand their
batches to the one generation worker at background priority, so people's requests go first. Processes
sharing a store warm it one at a time (``bot.leases``). Each
model is warmed on its own keys (the cache is keyed by model id): the bot's own first, then each server
model in use, within one run's limit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from linernotes.bot.cache import Key, base_keys, parse_key
from linernotes.bot.config import BotConfig, drafts_for, sampling_for
from linernotes.bot.leases import warm_lease
from linernotes.bot.storage import Database
from linernotes.common.errors import TagError
from linernotes.model.card import Card
from linernotes.model.config import Sampling, card_sampling
from linernotes.model.generator import Request
from linernotes.model.worker import BACKGROUND, GenerationWorker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmPlan:
    """How many generations each key is short of its target."""

    missing: list[tuple[Key, int]]

    @property
    def total(self) -> int:
        return sum(n for _, n in self.missing)


async def plan(
    db: Database,
    card: Card,
    step: float,
    per_key: int,
    hot_per_key: int,
    hot_keys: int,
    keys: Sequence[Key] | None = None,
) -> WarmPlan:
    """The shortfall per key, most requested keys first; with ``keys``, only those, at the hot depth."""
    depth = await db.depth(card.model_id)
    targets: dict[str, tuple[Key, int]] = {}
    if keys is not None:
        for key in filter(partial(_knows, card), keys):
            targets[key.key] = (key, hot_per_key)
    else:
        for name in await db.hot_keys(hot_keys):
            key = _parsed(name)
            if key is not None and _knows(card, key):
                targets[key.key] = (key, hot_per_key)
        for key in base_keys(card, step):
            targets.setdefault(key.key, (key, per_key))
    missing = [(k, want - depth.get(k.key, 0)) for k, want in targets.values() if want > depth.get(k.key, 0)]
    return WarmPlan(missing)


def _parsed(name: str) -> Key | None:
    try:
        return parse_key(name)
    except ValueError:
        return None  # a key written by a newer version, or by hand: nothing to warm


def _knows(card: Card, key: Key) -> bool:
    """Whether ``card``'s model takes ``key`` (a server model may not know every key people ask for)."""
    try:
        card.check_request(key.kind, key.tags)
    except (ValueError, TagError):
        return False
    return True


async def warm(
    db: Database,
    worker: GenerationWorker,
    card: Card,
    *,
    step: float,
    per_key: int,
    hot_per_key: int = 0,
    hot_keys: int = 0,
    batch: int = 16,
    sampling: Callable[[str], Sampling] | None = None,
    candidates: Callable[[str], int] | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    model: str | None = None,
    between: Callable[[], Awaitable[object]] | None = None,
    keys: Sequence[Key] | None = None,
) -> int:
    """Generate until every key of ``card``'s model (an attached adapter's name, or None: the checkpoint
    itself) reaches its depth (at most ``limit`` generations this run, most wanted keys first, so one run
    never holds the worker for long), each the most on-tag of ``candidates(kind)`` drafts (default: the
    card's); returns how many were stored. ``keys``: warm only these (those the model knows), to the hot
    depth."""
    todo = await plan(db, card, step, per_key, max(hot_per_key, per_key), hot_keys, keys)
    sampling_of = sampling or (lambda kind: card_sampling(card, kind))
    drafts = candidates or card.candidates
    # Breadth first: one generation for each short key (most wanted first), then a second, and so on,
    # so a run cut short by ``limit`` leaves the most keys answerable rather than a few keys deep.
    rounds = max((n for _, n in todo.missing), default=0)
    requests = [
        (
            key,
            Request(
                key.kind, key.tags, sampling=sampling_of(key.kind), model=model, candidates=drafts(key.kind)
            ),
        )
        for depth in range(rounds)
        for key, n in todo.missing
        if depth < n
    ][:limit]
    stored = done = 0
    for chunk in _jobs(requests, batch):
        results = await worker.submit([r for _, r in chunk], priority=BACKGROUND)
        await db.note_cost(results)
        for (key, _), result in zip(chunk, results, strict=True):
            if result.ok:
                await db.add(result, key.key, "warm")
                stored += 1
        done += len(chunk)
        if progress:
            progress(done, len(requests))
        if between is not None:
            await between()  # e.g. renew the warm-up's lease: this run is still going
    if requests:
        log.info("warm-up stored %d of %d generations", stored, len(requests))
    return stored


def _jobs(requests: list[tuple[Key, Request]], batch: int) -> list[list[tuple[Key, Request]]]:
    """``requests`` cut into worker jobs of about ``batch`` drafts each, however many drafts each slot
    writes (at least one slot a job): an interactive request never waits behind more than one such job."""
    jobs: list[list[tuple[Key, Request]]] = []
    drafts = batch  # the current job is full: the first request opens one
    for item in requests:
        if drafts + item[1].candidates > batch:
            jobs.append([])
            drafts = 0
        jobs[-1].append(item)
        drafts += item[1].candidates
    return jobs


async def warm_as_configured(
    config: BotConfig,
    db: Database,
    worker: GenerationWorker,
    limit: int | None,
    progress: Callable[[int, int], None] | None = None,
    adapters: Sequence[tuple[str, Card]] = (),
    keys: Sequence[Key] | None = None,
) -> int:
    """``warm`` with the bot's settings, for the bot's own model and then each server model in use
    (``adapters``: attached name and card), sharing ``limit``: the scheduled job, ``/warm`` and
    ``linernotes warm`` alike (``keys``: only these, as in ``warm``). One process at a time warms a store
    (``warm_lease``): 0 when another is."""
    async with warm_lease(db) as lease:
        if lease is None:
            return 0
        models = [(None, worker.card), *adapters]
        return await _warm_models(config, db, worker, limit, progress, models, lease.renew, keys)


async def _warm_models(
    config: BotConfig,
    db: Database,
    worker: GenerationWorker,
    limit: int | None,
    progress: Callable[[int, int], None] | None,
    models: Sequence[tuple[str | None, Card]],
    between: Callable[[], Awaitable[object]],
    keys: Sequence[Key] | None,
) -> int:
    stored = 0
    # An adapter samples, and is ranked, as its base is.
    sampling = partial(sampling_for, config, worker.card)
    drafts = partial(drafts_for, config, worker.card)
    for n, (model, card) in enumerate(models):
        # An equal share of what is left for each model still to warm, so no model waits for all the others.
        left = None if limit is None else -(-(limit - stored) // (len(models) - n))
        stored += await warm(
            db,
            worker,
            card,
            step=config.score_bucket,
            per_key=config.per_key,
            hot_per_key=config.hot_per_key,
            hot_keys=config.hot_keys,
            batch=config.warm_batch,
            limit=left,
            sampling=sampling,
            candidates=drafts,
            progress=progress if model is None else None,
            model=model,
            between=between,
            keys=keys,
        )
    return stored
