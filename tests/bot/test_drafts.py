"""Cache misses write ranked drafts only when the generator is idle and they fit the wait allowed."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from linernotes.bot.drafts import MissDrafts
from linernotes.model.generator import Request, Result
from tests.bot.helpers import footer_id


def timed(kind: str, seconds: float, ranked: int = 1) -> Result:
    """A finished miss of ``kind`` that took ``seconds`` for ``ranked`` drafts."""
    result = Result(Request(kind, {}), "Some words.", True, 1, "end", 5, seconds, "m")
    return replace(result, ranked=ranked)


def test_a_kind_not_yet_timed_or_a_busy_queue_gets_one_draft():
    drafts = MissDrafts(budget=8.0)
    assert drafts.drafts("lyrics", 4, idle=True) == 1  # no miss of the kind timed yet
    drafts.observe(timed("lyrics", 1.5))
    assert drafts.drafts("lyrics", 4, idle=False) == 1  # others are waiting
    assert drafts.drafts("lyrics", 4, idle=True) == 4
    assert drafts.drafts("review", 4, idle=True) == 1  # timed per kind


@pytest.mark.parametrize(
    ("seconds", "ranked", "budget", "card", "written"),
    [
        (2.0, 1, 8.0, 4, 4),  # four lone drafts fit 8 s
        (3.0, 1, 8.0, 4, 2),  # two fit, not three
        (18.0, 1, 8.0, 4, 1),  # a review at guidance 3 already takes longer than the budget
        (6.0, 4, 8.0, 8, 5),  # timed from ranked drafts: 1.5 s each
        (1.0, 1, 8.0, 1, 1),  # the card ranks nothing for the kind
        (1.0, 1, 0.0, 4, 1),  # the setting turns it off
    ],
)
def test_drafts_fit_the_budget_by_the_kinds_last_miss(seconds, ranked, budget, card, written):
    drafts = MissDrafts(budget)
    drafts.observe(timed("lyrics", seconds, ranked))
    assert drafts.drafts("lyrics", card, idle=True) == written


@pytest.fixture
def bot_checkpoint(tiny_fp32, tmp_path):
    """The tiny model with a card that ranks 3 drafts per song part."""
    checkpoint = tmp_path / "ranks-lyrics"
    shutil.copytree(tiny_fp32, checkpoint)
    card = json.loads((checkpoint / "card.json").read_text())
    card["generation"]["candidates_by_kind"] = {"lyrics": 3}
    (checkpoint / "card.json").write_text(json.dumps(card))
    return checkpoint


@pytest.mark.simcord(settle_timeout=60)
async def test_an_idle_bots_second_seeded_miss_is_the_best_of_the_cards_drafts(simcord_env, server):
    _, channel, alice, _ = server
    db = simcord_env.bot.db
    assert simcord_env.bot.config.miss_draft_seconds > 0  # the default
    first = await alice.slash(channel, "lyrics", part="chorus", seed="we drove all night")
    assert (await db.get(footer_id(first.response))).ranked == 1  # nothing timed yet: one draft
    # A seed line is never cached, so this is a miss too, now timed well inside the budget.
    second = await alice.slash(channel, "lyrics", part="chorus", seed="we drove all night")
    gen = await db.get(footer_id(second.response))
    assert gen.ranked == 3 and gen.text.startswith("we drove all night")
    review = await alice.slash(channel, "review", genre="Metal", score=7.5)
    assert (await db.get(footer_id(review.response))).ranked == 1  # the card ranks no reviews
