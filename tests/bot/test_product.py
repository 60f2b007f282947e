"""``/product rating [headline]``: offered when the card knows product reviews, cached per rating."""

from __future__ import annotations

import json
import shutil

import pytest
import simcord

from linernotes.bot.cache import base_keys, key_for, parse_key
from linernotes.model.card import read_card
from tests.bot.helpers import callbacks, fill, footer_id

pytestmark = pytest.mark.simcord(settle_timeout=60)


async def test_rating_is_cached_and_a_headline_is_written_for_its_asker(simcord_env, server):
    _, channel, alice, bob = server
    miss = await alice.slash(channel, "product", rating=4)
    assert callbacks(simcord_env)[-1] == {"type": 5}  # nothing cached yet: deferred, then generated
    assert miss.response.embeds[0].title == "★★★★☆" and miss.response.embeds[0].description
    await fill(simcord_env, "product", {"rating": 4}, 1)
    hit = await bob.slash(channel, "product", rating=4)
    assert callbacks(simcord_env)[-1]["type"] == 4  # answered from the cache in the first response
    assert hit.response.embeds[0].title == "★★★★☆"
    model = simcord_env.bot.requests.card.model_id
    await fill(simcord_env, "product", {"rating": 2}, 1)
    headed = await alice.slash(channel, "product", rating=2, headline="Strings   snap\u200b fast")
    assert callbacks(simcord_env)[-1] == {"type": 5}  # a headline is always generated, even on a warm key
    assert headed.response.embeds[0].title == "★★☆☆☆ · Strings snap fast"
    gen = await simcord_env.bot.db.get(footer_id(headed.response))
    assert gen.tags == {"rating": 2, "headline": "Strings snap fast"}
    assert (await simcord_env.bot.db.depth(model))["product|2"] == 1  # alice's headline serves nobody else


async def test_rating_out_of_range_is_rejected(simcord_env, server):
    _, channel, alice, _ = server
    for rating in (0, 6):
        with pytest.raises(simcord.OptionError) as e:
            await alice.slash(channel, "product", rating=rating)
        assert e.value.code == "option-range" and e.value.option == "rating"


def test_warm_up_keeps_every_known_rating_ready(tiny_fp32):
    card = read_card(tiny_fp32)
    ratings = card.values("product", "rating")
    product_keys = [k for k in base_keys(card, 0.5) if k.kind == "product"]
    assert sorted(k.tags["rating"] for k in product_keys) == sorted(int(r) for r in ratings) and ratings
    assert all(parse_key(k.key) == k for k in product_keys)  # demand rows map back to the same keys
    headed = key_for("product", {"rating": 3, "headline": "Mine"}, 0.5)
    assert headed.private and headed.key == "product|3" and not key_for("product", {"rating": 3}, 0.5).private


@pytest.fixture
def reviews_only(tiny_fp32, tmp_path):
    """The tiny checkpoint with a card that knows no product reviews."""
    out = tmp_path / "no-product"
    shutil.copytree(tiny_fp32, out)
    card = json.loads((out / "card.json").read_text())
    del card["tags"]["product"]
    (out / "card.json").write_text(json.dumps(card))
    return out


class TestWithoutProductKind:
    @pytest.fixture
    def bot_checkpoint(self, reviews_only):
        return reviews_only

    async def test_no_product_command(self, simcord_env, server):
        _, channel, alice, _ = server
        assert "product" not in alice.available_commands(channel)
        assert "review" in alice.available_commands(channel)
        assert "product" not in {c.name for c in simcord_env.bot.tree.get_commands()}
