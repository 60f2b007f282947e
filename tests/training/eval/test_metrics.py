"""Each evaluation measure on planted cases: it must find what was planted and nothing else."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from linernotes.data.format import Record
from linernotes.data.splits import read_split
from linernotes.model.card import Card
from linernotes.model.copyguard import CopyGuard, build_index
from linernotes.training.dataset import fingerprint
from linernotes.training.eval import judges
from linernotes.training.eval.adherence import (
    LabelAdherence,
    Regression,
    ScoreAdherence,
    adherence,
    confusion,
)
from linernotes.training.eval.compare import compare
from linernotes.training.eval.conditions import Condition, Sample, conditions
from linernotes.training.eval.config import EvalConfig
from linernotes.training.eval.copying import Copying, Overlap, copying
from linernotes.training.eval.diversity import (
    Diversity,
    Duplicates,
    bleu,
    distinct,
    diversity,
    duplicate_share,
    self_bleu,
)
from linernotes.training.eval.judges import fit_judge, load_or_fit, structure_features
from linernotes.training.eval.likelihood import (
    Perplexity,
    PerplexityRow,
    TagId,
    TagIdCase,
    nll_scorer,
    tag_id,
)
from linernotes.training.eval.ratings import Approval, approval
from linernotes.training.eval.result import AtScale, EvalReport, Floor, Generation, HeldOut, Samples
from linernotes.training.eval.run import candidate_values
from linernotes.training.eval.stats import above, proportion, spearman_ci, wilson

PASSAGE = (
    "the lighthouse keeper counted every wave that broke against the northern wall until "
    "the morning ferry brought his daughter home again"
)


def _records(data: Path, split: str) -> list[Record]:
    return [i.record for i in read_split(data, split)]


def test_genre_judge_reads_real_text_well_above_chance(sample_data: Path) -> None:
    train, test = _records(sample_data, "train"), _records(sample_data, "test") + _records(sample_data, "val")
    labels = ["Metal", "Jazz", "Electronic", "Folk/Country"]
    judge = fit_judge("review", "genre", train, labels)
    held = [r for r in test if r.kind == "review" and r.tags["genre"] in labels]
    judged = judge.predict([r.text for r in held])
    accuracy = sum(j == r.tags["genre"] for j, r in zip(judged, held, strict=True)) / len(held)
    assert len(held) >= 8
    assert accuracy > 1 / len(labels) + 0.25


def test_score_judge_tracks_real_scores(sample_data: Path) -> None:
    judge = fit_judge("review", "score", _records(sample_data, "train"), None)
    held = [r for r in _records(sample_data, "val") + _records(sample_data, "test") if r.kind == "review"]
    judged = judge.predict([r.text for r in held])
    corr = torch.corrcoef(torch.tensor([judged, [r.tags["score"] for r in held]]))[0, 1]
    assert corr > 0.5


def test_judges_are_fitted_once_per_training_split(
    sample_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = _records(sample_data, "train")
    wanted: dict = {("review", "genre"): ["Metal", "Jazz"]}
    cache = tmp_path / "judges.joblib"
    first = load_or_fit(cache, fingerprint(train), wanted, train)

    def refit(*args: object) -> None:
        raise AssertionError("fitted again")

    monkeypatch.setattr(judges, "fit_judge", refit)
    again = load_or_fit(cache, fingerprint(train), wanted, train)
    texts = [r.text for r in train[:20]]
    assert again.keys() == first.keys() == {("review", "genre")}
    assert again["review", "genre"].predict(texts) == first["review", "genre"].predict(texts)
    with pytest.raises(AssertionError, match="fitted again"):  # other training data: fitted anew
        load_or_fit(cache, fingerprint(train[1:]), wanted, train[1:])


def test_structure_features_see_repetition_and_rhyme() -> None:
    chorus = "hold the light\nhold the light tonight\nhold the light\nwe burn so bright"
    verse = "I drove the long way past the mill\nmy father sold in ninety-two\nthe river took the rest of it"
    c, v = structure_features(chorus), structure_features(verse)
    assert c[3] > v[3]  # repeated lines
    assert c[5] > v[5]  # repeated hooks
    assert c[6] > 0 and v[6] == 0  # rhyme density


def test_part_judge_with_structure_beats_chance_on_real_lyrics(sample_data: Path) -> None:
    train = _records(sample_data, "train")
    judge = fit_judge("lyrics", "part", train, ["verse", "chorus"])
    assert judge.structure
    held = [r for r in train if r.kind == "lyrics" and r.tags["part"] in ("verse", "chorus")]
    # Training-set accuracy only shows the judge learned something; held-out is the report's ceiling.
    judged = judge.predict([r.text for r in held])
    assert sum(j == r.tags["part"] for j, r in zip(judged, held, strict=True)) / len(held) > 0.75


def test_adherence_compares_generated_with_floor_and_ceiling(sample_data: Path) -> None:
    train = _records(sample_data, "train")
    judge = fit_judge("review", "genre", train, ["Metal", "Jazz"])
    metal = [r.text for r in train if r.kind == "review" and r.tags["genre"] == "Metal"][:6]
    jazz = [r.text for r in train if r.kind == "review" and r.tags["genre"] == "Jazz"][:6]

    def samples(texts: list[str], genre: str) -> list[Sample]:
        cond = Condition("review", {"genre": genre, "score": 7.0}, ("genre", "score"))
        return [Sample(cond, 1.0, _result(t)) for t in texts]

    # "Generated" text that obeys the request vs a floor that ignores it (always Jazz-like).
    obeys = samples(metal, "Metal") + samples(jazz, "Jazz")
    ignores = samples(jazz, "Metal") + samples(jazz, "Jazz")
    out = adherence(judge, obeys, ignores, _records(sample_data, "test"))
    assert isinstance(out, LabelAdherence)
    assert out.generated.accuracy > 0.9
    assert 0.4 <= out.floor.accuracy <= 0.6
    assert out.p_above_floor < 0.05
    assert sum(map(sum, out.confusion)) == 12


def _result(text: str):
    from linernotes.model.generator import Request, Result

    return Result(Request("review", {}), text, True, 1, "end", 10, 0.0, "m")


def test_confusion_counts_requested_by_judged() -> None:
    assert confusion(["a", "b", "b"], ["a", "a", "b"], ["a", "b"]) == [[1, 1], [0, 1]]


def test_planted_copy_is_found_with_its_training_passage() -> None:
    train = ["an unrelated review of a quiet record", "before " + PASSAGE + " after"]
    guard = CopyGuard(build_index(train))
    fresh = "a brand new chorus about rain on a tin roof and the radio playing low"
    out = copying([fresh, "she sang: " + PASSAGE], guard, train)
    assert out.copied == 1 and out.copy_rate == 0.5
    worst = out.worst[0]
    assert worst.longest_run >= 20
    assert PASSAGE in worst.match
    assert out.overlap_8gram.max > 0.8  # all but the 8-grams touching "she sang"


def test_fresh_text_is_not_a_copy() -> None:
    guard = CopyGuard(build_index([PASSAGE]))
    out = copying(["the lighthouse keeper went to the market for bread and eggs"], guard, [PASSAGE])
    assert out.copied == 0 and out.worst == []


def test_duplicated_generation_is_detected() -> None:
    out = duplicate_share([["Hold the light", "hold  the light ", "another text"], ["hold the light"]])
    assert out == Duplicates(n=4, duplicates=1, share=0.25)


def test_distinct_and_self_bleu_tell_repetition_from_variety() -> None:
    same = ["we ride the night away tonight"] * 4
    varied = ["we ride the night", "rain falls on the city", "my heart is a radio", "cold coffee at dawn"]
    assert distinct(same, 2) < 0.3 < distinct(varied, 2)
    assert self_bleu(same) == pytest.approx(1.0)
    assert self_bleu(varied) < 0.2
    assert bleu(["a", "b", "c", "d"], [["a", "b", "c", "d"]]) == pytest.approx(1.0)
    d = diversity({"x": same, "y": varied})
    assert d.duplicates.duplicates == 3 and d.groups == 2


def test_scorer_matches_the_models_own_loss(tiny_fp32: Path) -> None:
    from linernotes.model.checkpoint import load_checkpoint

    loaded = load_checkpoint(tiny_fp32, "fp32", "cpu")
    ids = loaded.tokenizer("<|review|> genre: Metal | score: 7.5\nHeavy riffs and thunder.")["input_ids"]
    [(nll, n)] = nll_scorer(loaded.model, 4)([(ids, 0)])
    with torch.inference_mode():
        loss = loaded.model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss
    assert n == len(ids) - 1
    assert nll / n == pytest.approx(float(loss), rel=1e-4)
    # Padding in a batch changes nothing.
    [(nll2, _), _] = nll_scorer(loaded.model, 4)([(ids, 0), (ids + ids, 0)])
    assert nll2 == pytest.approx(nll, rel=1e-4)


class _Tok:
    """Whitespace tokenizer over a growing vocabulary (for planted likelihoods)."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab)) for w in text.split()]}


def test_tag_id_ranks_the_planted_true_value_first() -> None:
    tok = _Tok()
    parts = ["verse", "chorus", "bridge", "intro"]
    records = [Record("lyrics", {"part": p}, f"words of a {p} here") for p in parts * 5]

    def planted(seqs):
        # Likelihood is high only when the header names the part the body mentions.
        out = []
        for ids, n_prefix in seqs:
            inv = {i: w for w, i in tok.vocab.items()}
            head, body = [inv[i] for i in ids[:n_prefix]], [inv[i] for i in ids[n_prefix:]]
            out.append((0.0 if body[3] in " ".join(head) else 5.0, len(body)))
        return out

    cases = [TagIdCase(r, "part", parts) for r in records]
    out = tag_id(cases, tok, planted, max_tokens=16)
    assert out.accuracy == 1.0 and out.mean_rank == 1.0
    assert out.chance == 0.25 and out.p_value < 1e-6


def test_tag_id_at_chance_when_likelihood_ignores_the_tag() -> None:
    tok = _Tok()
    parts = ["verse", "chorus"]
    records = [Record("lyrics", {"part": p}, "the same words") for p in parts * 10]
    out = tag_id([TagIdCase(r, "part", parts) for r in records], tok, lambda s: [(1.0, 3)] * len(s), 16)
    # Every value ties: a tie earns a share of a hit, so a tag the model ignores scores chance.
    assert out.accuracy == pytest.approx(out.chance) == 0.5 and out.n == 20


def test_wilson_and_two_proportion_test() -> None:
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    # Near the edges the interval stays inside [0, 1] without collapsing: 0 of 10 is not "surely 0".
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-3)) and wilson(0, 0) == (0.0, 1.0)
    assert above(80, 100, 50, 100) < 0.001
    assert above(50, 100, 80, 100) > 0.99
    assert math.isnan(above(1, 0, 1, 1))


def test_spearman_interval_holds_the_estimate_and_narrows_with_more_texts() -> None:
    import numpy as np
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    asked = np.repeat([2.0, 4.0, 6.0, 7.5, 9.0], 80)  # five requested scores, as the benchmark asks
    judged = asked * 0.3 + rng.normal(0, 1.5, len(asked))
    width = {}
    for n in (100, 400):
        x, y = asked[::4] if n == 100 else asked, judged[::4] if n == 100 else judged
        lo, hi = spearman_ci(x, y)
        assert lo < float(spearmanr(x, y).statistic) < hi and spearman_ci(x, y) == (lo, hi)  # seeded
        width[n] = hi - lo
    assert width[400] < 0.7 * width[100]  # about 1/sqrt(n): four times the texts, half the width
    # A perfect ranking is surely 1 (ties in the judged side included); no variation, no interval.
    assert spearman_ci(asked, asked * 2) == (1.0, 1.0)
    assert all(math.isnan(v) for v in spearman_ci(asked, np.ones_like(asked)))


def test_approval_per_tag_value() -> None:
    rated = [
        {"kind": "review", "tags": {"genre": "Metal", "score": 7.5}, "up": 2, "down": 1},
        {"kind": "review", "tags": {"genre": "Metal", "score": 2.0}, "up": 0, "down": 1},
        {"kind": "lyrics", "tags": {"part": "chorus"}, "up": 1, "down": 0},
    ]
    rows = {(r.kind, r.tag, r.value): r for r in approval(rated)}
    assert rows[("review", "genre", "Metal")] == Approval("review", "genre", "Metal", 2, 2, 2, 0.5)
    assert rows[("review", "score", "< 5")].approval == 0.0
    assert rows[("lyrics", "", "all")].approval == 1.0


def _report(ppl: float, copy: float, acc: float, mae: float) -> EvalReport:
    """A report holding just the figures ``compare`` reads (at guidance 1)."""
    part = LabelAdherence(
        "lyrics",
        "part",
        proportion(8, 10),
        proportion(int(acc * 10), 10),
        proportion(3, 10),
        0.25,
        0.01,
        [],
        [],
    )
    score = ScoreAdherence("review", "score", Regression(9), Regression(9, mae, 0.5), Regression(9), [])
    unused = Diversity(1, 0.5, 0.8, 0.9, 0.1, Duplicates(4, 0, 0.0))
    block = AtScale(
        adherence={"lyrics/part": part, "review/score": score},
        copying=Copying(10, 12, copy, int(copy * 10), Overlap(0.1, 0.1, 0.2, 0.3, []), []),
        diversity=unused,
        clean_stops=0.9,
        header_leaks=0.0,
        empty=0.0,
        mean_words=40.0,
    )
    return EvalReport(
        model_id="m",
        checkpoint="c",
        created="now",
        config={},
        held_out=HeldOut("test", 5),
        perplexity=Perplexity(5, [PerplexityRow("all", "", "", 100, ppl)]),
        tag_id={"lyrics/part": TagId(0)},  # nothing ranked: not a metric
        generation=Generation([1.0], 1.0, Samples(1, 2), {"1": block}, Floor(0.8), unused),
    )


def test_compare_picks_the_winner_in_each_metrics_direction() -> None:
    rows = {
        r["metric"]: r["winner"] for r in compare(_report(30.0, 0.1, 0.5, 1.0), _report(40.0, 0.0, 0.6, 2.0))
    }
    assert rows["test perplexity"] == "A"
    assert rows["copy rate"] == "B"
    assert rows["adherence lyrics/part"] == "B"
    assert rows["adherence review/score MAE"] == "A"
    assert rows["clean stops"] == "tie"
    assert "tag-ID lyrics/part" not in rows


def test_report_json_holds_every_figure_of_the_typed_report() -> None:
    report = _report(30.0, 0.1, 0.5, 1.0)
    data = report.to_dict()
    # The generation measures sit at the top level, as report.json always had them.
    assert data["by_guidance"]["1"]["adherence"]["lyrics/part"]["generated"]["accuracy"] == 0.5
    assert data["by_guidance"]["1"]["adherence"]["review/score"]["generated"]["mae"] == 1.0
    assert data["perplexity"]["rows"][0]["ppl"] == 30.0 and data["guidance"] == [1.0]
    assert "ratings" not in data and "cache_duplicates" not in data  # no database given


def test_candidates_are_the_known_values_with_held_out_evidence():
    # Ten artists trained most often but absent from the test split would leave tag-ID and the judge's
    # ceiling with nothing to score: candidates go to the known values the held-out split has most of.
    tags = {"lyrics": {"part": {"chorus": 9, "verse": 8, "bridge": 2}, "artist": {"A": 50, "B": 40, "C": 5}}}
    card = Card(model_id="m", base_model="b", precision="fp32", architecture={}, tokenizer={}, tags=tags)
    # Z has a held-out section but is unknown to the model: never a candidate.
    held = [Record("lyrics", {"part": "verse", "artist": "C"}, "x")] * 3 + [
        Record("lyrics", {"part": "bridge", "artist": "Z"}, "x"),
        Record("lyrics", {"part": "chorus", "artist": "B"}, "x"),
    ]
    config = EvalConfig(checkpoint="c", data="d", out="o", max_values=2, max_parts=3)
    picked = candidate_values(card, config, held)
    assert picked == {("lyrics", "part"): ["verse", "chorus", "bridge"], ("lyrics", "artist"): ["C", "B"]}
    conds = conditions(card, picked)
    assert [c.tags for c in conds] == [
        {"part": "verse"},
        {"part": "chorus"},
        {"part": "bridge"},
        {"part": "verse", "artist": "C"},
        {"part": "verse", "artist": "B"},
    ]
