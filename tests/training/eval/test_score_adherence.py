"""Score and rating adherence read as requested-against-judged scores (Spearman, MAE), and ``--kinds``."""

from __future__ import annotations

from pathlib import Path

from linernotes.data.format import Record
from linernotes.data.splits import read_split
from linernotes.model.card import Card
from linernotes.model.generator import Request, Result
from linernotes.training.eval.adherence import LabelAdherence, ScoreAdherence, adherence
from linernotes.training.eval.conditions import Condition, Sample
from linernotes.training.eval.config import EvalConfig
from linernotes.training.eval.judges import fit_judge
from linernotes.training.eval.run import candidate_values, generation_measures, load


def _records(data: Path, split: str) -> list[Record]:
    return [i.record for i in read_split(data, split)]


def _samples(kind: str, tag: str, pairs: list[tuple[str, object]]) -> list[Sample]:
    """Texts as if generated for the requested ``tag`` values paired with them."""
    return [
        Sample(
            Condition(kind, {tag: v}, (tag,)), 1.0, Result(Request(kind, {}), t, True, 1, "end", 10, 0.0, "m")
        )
        for t, v in pairs
    ]


def test_score_adherence_has_spearman_beside_mae(sample_data: Path) -> None:
    train = _records(sample_data, "train")
    judge = fit_judge("review", "score", train, None)
    reviews = [r for r in train if r.kind == "review"][:30]
    true = [(r.text, r.tags["score"]) for r in reviews]
    # A floor whose requests have nothing to do with its texts: the scores asked for, reversed.
    shuffled = [(r.text, s) for r, (_, s) in zip(reviews, sorted(true, key=lambda p: -p[1]), strict=True)]
    out = adherence(judge, _samples("review", "score", true), _samples("review", "score", shuffled), train)
    assert isinstance(out, ScoreAdherence)
    assert out.generated.spearman is not None and out.generated.spearman > 0.8  # texts it was fitted on
    assert out.floor.spearman is not None and out.floor.spearman < out.generated.spearman - 0.5
    assert out.ceiling.n > 0 and -1 <= out.ceiling.spearman <= 1  # type: ignore[operator]


def test_rating_judge_is_also_read_as_a_score(sample_data: Path) -> None:
    train = _records(sample_data, "train")
    judge = fit_judge("product", "rating", train, ["1", "2", "3", "4", "5"])
    products = [r for r in train if r.kind == "product"][:30]
    obeys = _samples("product", "rating", [(r.text, int(r.tags["rating"])) for r in products])
    ignores = _samples("product", "rating", [(r.text, 3) for r in products])  # one request for all
    out = adherence(judge, obeys, ignores, _records(sample_data, "test") + _records(sample_data, "val"))
    assert isinstance(out, LabelAdherence) and out.ordinal is not None
    assert out.ordinal.generated.n == 30 and out.ordinal.generated.spearman > 0.8  # type: ignore[operator]
    assert out.ordinal.floor.spearman == 0.0  # nothing varies in what was asked
    assert out.ordinal.ceiling.n == out.ceiling.n


def test_genre_labels_are_not_read_as_scores(sample_data: Path) -> None:
    train = _records(sample_data, "train")
    judge = fit_judge("review", "genre", train, ["Metal", "Jazz"])
    texts = [
        (r.text, r.tags["genre"])
        for r in train
        if r.kind == "review" and r.tags["genre"] in ("Metal", "Jazz")
    ]
    out = adherence(
        judge, _samples("review", "genre", texts[:6]), _samples("review", "genre", texts[6:12]), train
    )
    assert isinstance(out, LabelAdherence) and out.ordinal is None


def test_kinds_limit_the_candidates() -> None:
    tags = {"lyrics": {"part": {"verse": 3, "chorus": 2}}, "product": {"rating": {"5": 4, "1": 3}}}
    card = Card(model_id="m", base_model="b", precision="fp32", architecture={}, tokenizer={}, tags=tags)
    config = EvalConfig(checkpoint="c", data="d", out="o", kinds=("product",))
    assert candidate_values(card, config, []) == {("product", "rating"): ["5", "1"]}
    assert config.wants("product") and not config.wants("lyrics")
    assert EvalConfig(checkpoint="c", data="d", out="o").wants("lyrics")  # none named: every kind


def test_generation_for_one_kind_only(tiny_fp32: Path, sample_data: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        checkpoint=str(tiny_fp32),
        data=str(sample_data),
        out=str(tmp_path),
        samples=1,
        guidance=(1.0,),
        max_new_tokens=8,
        kinds=("product",),
    )
    loaded = load(config)
    generation = generation_measures(loaded, tmp_path / "judges.joblib")
    block = generation.by_guidance["1"]
    assert set(block.adherence) == {"product/rating"}
    rating = block.adherence["product/rating"]
    assert isinstance(rating, LabelAdherence) and rating.ordinal is not None
    assert generation.samples.conditions == len(tiny_ratings := loaded.gen.card.tags["product"]["rating"])
    assert len(generation.texts["1"]) == len(tiny_ratings)
