"""Ratings made in Discord come back out as training data, and train."""

from __future__ import annotations

import json

import pytest

from linernotes.bot.feedback import export_feedback
from linernotes.cli.main import main
from linernotes.data.splits import iter_split
from linernotes.training.loop import train
from tests.bot.helpers import footer_id
from tests.conftest import ENGINES, tiny_config

pytestmark = pytest.mark.simcord(settle_timeout=60)


@pytest.mark.parametrize("bot_store", ENGINES, indirect=True)
async def test_ratings_export_and_train_again(simcord_env, server, tmp_path, sample_data):
    guild, channel, alice, bob = server
    carol = guild.add_member(simcord_env.create_user("carol"))
    liked = await alice.slash(channel, "lyrics", part="chorus")
    disliked = await bob.slash(channel, "lyrics", part="chorus")
    seeded = await carol.slash(channel, "lyrics", part="chorus", seed="my own first line")
    for member in (alice, bob, carol):
        await member.react(liked.response, "👍")
        await member.react(disliked.response, "👎")
        await member.react(seeded.response, "👍")
    await bob.react(liked.response, "👎")  # bob changes his mind: 2 up, 1 down
    out = tmp_path / "feedback"
    counts = await export_feedback(simcord_env.bot.config.database, out)
    assert counts == {"train": 1, "rated": 3, "pairs": 1}
    (row,) = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert row["votes"] == {"up": 2, "down": 1} and row["tags"]["part"] == "chorus"
    assert row["source"].endswith(f"#{footer_id(liked.response)}")
    (pair,) = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert pair["rejected_votes"] == {"up": 0, "down": 3}
    assert [i.record.tags for i in iter_split(out / "train.jsonl")] == [{"part": "chorus"}]
    run = tmp_path / "again"
    summary = train(tiny_config(sample_data, run, steps=2, extra_data=[str(out)]))
    assert str(out / "train.jsonl") in summary["data"]["sources"]


def test_feedback_cli_names_a_missing_database(tmp_path, capsys):
    assert (
        main(["feedback", "export", "--db", str(tmp_path / "none.sqlite3"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "none.sqlite3: no such database" in capsys.readouterr().err
