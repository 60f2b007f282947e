"""The ranker a checkpoint carries: fitted at export, stored without pickle, and used to keep the most
on-tag of several drafts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from linernotes.data.splits import read_split
from linernotes.model.card import read_card
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.model.rank import RANKER_FILE, Ranker
from linernotes.training.ranker import fit_ranker


@pytest.fixture(scope="module")
def ranker(sample_data) -> Ranker:
    fitted = fit_ranker([i.record for i in read_split(sample_data, "train")])
    assert fitted is not None
    return fitted


def test_it_reads_tags_back_out_of_real_held_out_text(ranker, sample_data):
    held = [i.record for s in ("val", "test") for i in read_split(sample_data, s)]
    reviews = [r for r in held if r.kind == "review"]
    genres = sorted({r.tags["genre"] for r in reviews})
    # The true genre should outscore the others on real reviews the ranker never saw, well above chance.
    right = sum(
        max(genres, key=lambda g, r=r: ranker.score("review", {**r.tags, "genre": g}, [r.text])[0])
        == r.tags["genre"]
        for r in reviews
    )
    assert right / len(reviews) > 2 / len(genres)
    # Asked for 10 rather than 0, a text gains in proportion to the score the ranker reads in it: that gain
    # must rise with the real score (rank correlation), though a linear judge pulls its readings inward.
    gain = [
        ranker.score("review", {**r.tags, "score": 10.0}, [r.text])[0]
        - ranker.score("review", {**r.tags, "score": 0.0}, [r.text])[0]
        for r in reviews
    ]
    assert spearmanr(gain, [r.tags["score"] for r in reviews]).statistic > 0.3


def test_it_saves_without_pickle_and_loads_the_same_scores(ranker, tmp_path):
    ranker.save(tmp_path)
    with np.load(tmp_path / RANKER_FILE, allow_pickle=False) as stored:
        assert "meta" in stored.files
    loaded = Ranker.load(tmp_path)
    texts = ["A crushing riff and a slow doom dirge.", "Catchy hooks, bright synths.", ""]
    for kind, tags in (("review", {"genre": "Metal", "score": 8.0}), ("lyrics", {"part": "chorus"})):
        assert np.allclose(loaded.score(kind, tags, texts), ranker.score(kind, tags, texts))
    assert Ranker.load(tmp_path / "nothing-here") is None


def test_export_stores_the_ranker_and_the_card_describes_it(tiny_fp32):
    card = read_card(tiny_fp32)
    assert card.ranker is not None and (Path(tiny_fp32) / card.ranker["file"]).is_file()
    assert {"review/genre", "review/score", "lyrics/part", "product/rating"} <= set(card.ranker["judges"])


def test_a_ranked_request_keeps_the_best_scored_of_its_drafts(tiny_fp32):
    gen = Generator.load(tiny_fp32, GenerateConfig(min_chars=1, max_attempts=1, device="cpu"))
    tags = {"genre": gen.card.values("review", "genre")[0], "score": 8.5}
    sampling = Sampling(seed=41, max_new_tokens=24)
    (ranked,) = gen.generate([Request("review", tags, sampling=sampling, candidates=3)])
    # The same three drafts, written one by one with the seeds ranking gives them.
    drafts = gen.generate(
        [Request("review", tags, sampling=sampling.with_seed(41 + 1000 * i)) for i in range(3)]
    )
    scores = gen.ranker.score("review", ranked.request.tags, [d.text for d in drafts])
    assert ranked.ranked == 3 and ranked.text == drafts[int(scores.argmax())].text
    assert ranked.rank_score == pytest.approx(float(scores.max()))
    # One draft is one draft: nothing to rank.
    (single,) = gen.generate([Request("review", tags, sampling=sampling)])
    assert single.ranked == 1 and single.rank_score is None and single.text == drafts[0].text


def test_a_checkpoint_without_a_ranker_writes_one_draft(tiny_fp32, tmp_path):
    import shutil

    shutil.copytree(tiny_fp32, tmp_path / "old")
    (tmp_path / "old" / RANKER_FILE).unlink()
    gen = Generator.load(tmp_path / "old", GenerateConfig(min_chars=1, max_attempts=1, device="cpu"))
    (result,) = gen.generate(
        [Request("lyrics", {"part": "verse"}, sampling=Sampling(seed=1, max_new_tokens=12), candidates=4)]
    )
    assert gen.ranker is None and result.ranked == 1
