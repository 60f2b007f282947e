"""The website against a real database and a real listening server (aiohttp on a free port on 127.0.0.1)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from linernotes.bot.storage import Database
from linernotes.bot.web.app import Site
from linernotes.bot.web.config import WebConfig
from linernotes.model.card import Card
from linernotes.model.config import Sampling
from linernotes.model.generator import Request, Result

MODEL = "m-bot"


def card(model_id: str = MODEL) -> Card:
    """A card that knows two genres (scores 1-9), products, and lyrics parts with one artist."""
    return Card(
        model_id=model_id,
        base_model="tiny",
        precision="fp32",
        architecture={},
        tokenizer={},
        tags={
            "review": {"examples": 10, "genre": {"Metal": 6, "Jazz": 4}, "score_range": [1.0, 9.0]},
            "product": {"examples": 5, "rating": {"5": 3, "1": 2}},
            "lyrics": {"examples": 8, "part": {"chorus": 5, "verse": 3}, "artist": {"Iron Chapel": 8}},
        },
        metrics={"steps": 43, "tokens": 42823, "elapsed_s": 919.2, "cpu_s": 1701.5, "gpu_s": 0.0},
    )


async def add(
    db: Database,
    key: str,
    text: str,
    *,
    model: str = MODEL,
    origin: str = "warm",
    seed_line: str | None = None,
    private: bool = False,
    tags: dict[str, Any] | None = None,
) -> int:
    """Store one generation under a cache key (its tags read from the key unless given); its row id."""
    kind, *parts = key.split("|")
    if tags is None:
        tags = {
            "review": lambda: {"genre": parts[0], "score": float(parts[1])},
            "product": lambda: {"rating": int(parts[0])},
            "lyrics": lambda: {"part": parts[0], **({"artist": parts[1]} if parts[1] else {})},
        }[kind]()
    request = Request(kind, tags, seed_line, Sampling(seed=len(text)))
    result = Result(request, text, True, 1, "end", 12, 0.25, model)
    return await db.add(result, key, origin, private=private)


@pytest.fixture
async def db(store) -> AsyncIterator[Database]:
    """The site's store, on each engine in turn."""
    database = Database(store)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
def web_settings() -> dict[str, Any]:
    """WebConfig fields a test may change before the site starts (no rate limit unless a test sets one)."""
    return {"port": 0, "rate": 0.0}


@pytest.fixture
def served_card() -> Card | None:
    """The card of the model the site serves from (None: the model the database records)."""
    return card()


@pytest.fixture
async def site(db, web_settings, served_card) -> AsyncIterator[Site]:
    site = Site(db, WebConfig(**web_settings), lambda: served_card)
    await site.start()
    yield site
    await site.stop()


@dataclasses.dataclass
class Got:
    status: int
    body: Any
    headers: Any


@pytest.fixture
async def get(site) -> AsyncIterator[Callable[..., Any]]:
    """``await get(path)``: status, body (JSON when JSON) and headers of one GET to the running site."""
    async with aiohttp.ClientSession() as session:

        async def fetch(path: str, **options: Any) -> Got:
            async with session.get(site.address + path, allow_redirects=False, **options) as r:
                is_json = r.content_type == "application/json"
                return Got(r.status, await (r.json() if is_json else r.text()), r.headers)

        yield fetch


async def showings(db: Database, via: str = "web") -> dict[int, int]:
    """Generation row id -> its showings of one kind (web or discord)."""
    rows = await db.fetch("SELECT generation_id, COUNT(*) FROM deliveries WHERE via = ? GROUP BY 1", (via,))
    return {r[0]: r[1] for r in rows}


async def row_of(db: Database, public_id: str) -> int:
    """The row id behind a public id (the tests' own bookkeeping; pages never show it)."""
    return (await db.fetch("SELECT id FROM generations WHERE public_id = ?", (public_id,)))[0][0]
