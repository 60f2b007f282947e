"""The pairwise header loss (``--pair-weight``): its draws, its arithmetic, and what it does to a model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from linernotes.common.errors import ConfigError
from linernotes.data.format import header, make_record
from linernotes.training.config import TrainConfig
from linernotes.training.loop import LMLoss, Trainer
from linernotes.training.packing import IGNORE, Encoded, collate
from linernotes.training.pairs import Pairs, collate_pairs, contrast_for, pair_loss
from tests.conftest import tiny_config

KNOWN = {
    "review": {"genre": {"Jazz": 3, "Metal": 2, "Rock": 1}, "score_range": [1.0, 9.0]},
    "product": {"rating": {"1": 1, "5": 1}},
    "lyrics": {"part": {"chorus": 2}},
}


class Chars:
    """A tokenizer with one id per character: enough to see which header a segment got."""

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [ord(ch) for ch in text]}


def pairs_of(tokens: int = 5) -> Pairs:
    """Pairs over a review, a product and a chorus (which has no contrast), char-tokenized."""
    records = [
        make_record(
            "review", {"genre": "Jazz", "score": 8.0}, "smoky and warm, a late-night record that swings"
        ),
        make_record("product", {"rating": 5}, "works great"),
        make_record("lyrics", {"part": "chorus"}, "la la la"),
    ]
    tok = Chars()
    encoded = [
        Encoded(tok(header(r.kind, r.tags))["input_ids"], [1], tok(r.text)["input_ids"]) for r in records
    ]
    return Pairs(tok, records, encoded, KNOWN, "tags", tokens, seed=3)


def test_contrast_for_uses_what_the_training_split_knows():
    assert contrast_for("review", {"genre": "Jazz", "score": 8.0}, KNOWN, 0) == {
        "genre": "Metal",
        "score": 2.0,
    }
    assert contrast_for("review", {"genre": "Jazz", "score": 8.0}, KNOWN, 1)["genre"] == "Rock"
    assert contrast_for("product", {"rating": 5}, KNOWN, 0) == {"rating": 1}
    assert contrast_for("lyrics", {"part": "chorus"}, KNOWN, 0) is None  # no other part known


def test_lyrics_pair_by_one_tag_swapped_as_tag_id_ranks_them():
    known = {"lyrics": {"part": {"chorus": 2, "verse": 1, "bridge": 1}, "artist": {"Ann": 1, "Bo": 1}}}
    tags = {"part": "chorus", "artist": "Ann"}
    swaps = [contrast_for("lyrics", tags, known, pick) for pick in range(4)]
    assert swaps == [
        {"part": "bridge", "artist": "Ann"},
        {"part": "chorus", "artist": "Bo"},
        {"part": "verse", "artist": "Ann"},
        {"part": "chorus", "artist": "Bo"},
    ]
    assert contrast_for("lyrics", {"part": "verse"}, known, 2) == {"part": "bridge"}  # no artist: the part


def test_draws_are_a_function_of_the_step_and_skip_kinds_without_a_contrast():
    pairs = pairs_of()
    assert [r.kind for r, _, _ in pairs.items] == ["review", "product"]  # one part known: no lyrics pair
    assert pairs.draw(7, 16) == pairs.draw(7, 16)  # a resume draws the same pairs
    assert pairs.draw(7, 16) != pairs.draw(8, 16)
    assert pairs.draw(7, 16) != pairs.draw(7, 16, process=1)  # each process its own share
    for own, other, body in pairs.draw(7, 16):
        assert own != other and len(body) == 5  # the body cut to pair_tokens, the headers apart
    review = pairs.items[0][1]
    others = {"".join(map(chr, o)) for own, o, _ in pairs.draw(1, 64) if own == review}
    # Every other genre the split knows is drawn, never the example's own, and the score is mirrored.
    assert others == {header("review", {"genre": g, "score": 2.0}) for g in ("Metal", "Rock")}


def test_collated_pairs_mark_each_sides_targets():
    drawn = pairs_of().draw(2, 3)
    batch, owners = collate_pairs(drawn, 0, "mask")
    keep = batch["targets"] != IGNORE
    assert torch.equal(owners >= 0, keep)  # every target has a side, nothing else does
    for side in range(6):
        body = drawn[side // 2][2]
        targets = batch["targets"][owners == side].tolist()
        assert targets == body  # both sides predict the same body tokens, after their own header


def test_pair_loss_is_the_logistic_loss_of_the_summed_log_probs():
    # Pair 0: own side -1.0 -2.0 (sum -3), contrast -4.0 (sum -4): margin +1. Pair 1: margin -2.
    losses = torch.tensor([1.0, 2.0, 4.0, 3.0, 1.0])
    owners = torch.tensor([0, 0, 1, 2, 3])
    loss, accuracy = pair_loss(losses, owners, 2)
    expected = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(2.0))) / 2
    assert loss.item() == pytest.approx(expected) and accuracy == 0.5


def test_pair_sides_score_as_each_segment_alone():
    """The packed pair batch gives each side the log-probability it has on its own: no leak between them."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=256, n_positions=128, n_embd=32, n_layer=2, n_head=2, eos_token_id=0, bos_token_id=0
        )
    ).eval()
    loss = LMLoss(model)
    drawn = pairs_of(tokens=40).draw(4, 3)
    # A review's side is longer than two of a product's, so some rows hold two sides.
    shared = [len(set(row.tolist()) - {-1}) for row in collate_pairs(drawn, 0, "mask")[1]]
    assert max(shared) == 2, shared
    for attention in ("mask", "segments"):
        batch, owners = collate_pairs(drawn, 0, attention)
        with torch.no_grad():
            losses, keep = loss(**batch, reduce=False)
            sides = torch.zeros(6).index_add(0, owners[keep], losses)
            for i, (own, other, body) in enumerate(drawn):
                for j, head in enumerate((own, other)):
                    alone, _ = loss(**collate([[(head + body, len(head))]], 128, 0, attention))
                    assert sides[2 * i + j].item() == pytest.approx(alone.item(), rel=1e-5)


def test_the_pair_loss_teaches_the_header(sample_data, tmp_path):
    """Trained with the term, a tiny model prefers each body's own header over its contrast more often,
    on the same draws, than the same run without it; its metrics record the term."""
    measured = {}
    for weight in (0.0, 5.0):
        config = tiny_config(
            sample_data, tmp_path / f"w{weight}", steps=30, pair_weight=weight, pair_batch=16
        )
        trainer = Trainer(config)
        trainer.train()
        t = trainer
        probe = Pairs(t.tokenizer, t.data.train, t.train_ex, t.tags, "tags", config.pair_tokens, seed=9)
        measured[weight] = _measure(trainer.loss, probe, trainer.pad)
        rows = [json.loads(line) for line in Path(config.out, "metrics.jsonl").read_text().splitlines()]
        steps = [r for r in rows if "loss" in r]
        assert all(("pair_acc" in r) == bool(weight) for r in steps)
    assert measured[5.0][0] < measured[0.0][0] - 0.1 and measured[5.0][1] > measured[0.0][1] + 0.04, measured


def _measure(loss: LMLoss, pairs: Pairs, pad: int) -> tuple[float, float]:
    """(mean pair loss, accuracy) of 256 fixed draws."""
    drawn = pairs.draw(10_000, 256)
    batch, owners = collate_pairs(drawn, pad, "mask")
    with torch.no_grad():
        losses, keep = loss.eval()(**batch, reduce=False)
    mean, accuracy = pair_loss(losses, owners[keep], len(drawn))
    return float(mean), accuracy


def test_bad_pair_settings_are_refused(sample_data, tmp_path):
    with pytest.raises(ConfigError, match="--pair-weight"):
        TrainConfig(data="d", out="o", pair_weight=-1)
    with pytest.raises(ConfigError, match="--pair-tokens"):
        TrainConfig(data="d", out="o", pair_tokens=0)
    # Whole songs with no artist: nothing to swap, so nothing to pair.
    songs = tmp_path / "songs"
    songs.mkdir()
    rows = [json.loads(r) for r in (sample_data / "train.jsonl").read_text().splitlines()]
    rows = [r | {"tags": {"part": "song"}} for r in rows if r["kind"] == "lyrics"]
    (songs / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (songs / "val.jsonl").write_text("")
    with pytest.raises(ConfigError, match="no training example has a contrasting header"):
        Trainer(tiny_config(songs, tmp_path / "run", pair_weight=1.0))
