"""``linernotes eval`` end to end on the tiny model: every section and plot, and ``--compare``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import joblib
import pytest

from linernotes.cli.main import main
from linernotes.data.splits import read_split
from linernotes.training.dataset import fingerprint
from linernotes.training.eval.config import EvalConfig
from linernotes.training.eval.likelihood import Perplexity, PerplexityRow
from linernotes.training.eval.result import EvalReport
from linernotes.training.eval.run import evaluate

SMALL = ["--samples", "2", "--max-values", "3", "--max-new-tokens", "24", "--tag-id-examples", "12"]


@pytest.fixture(scope="module")
def evaluated(
    tiny_fp32: Path, sample_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[EvalReport, Path]:
    """The one full evaluation of this module (two guidance scales, a database's ratings and cache)."""
    out = tmp_path_factory.mktemp("eval") / "report"
    config = EvalConfig(
        str(tiny_fp32),
        str(sample_data),
        str(out),
        samples=2,
        max_values=3,
        max_new_tokens=24,
        tag_id_examples=12,
        guidance=(1.0, 2.0),
    )
    report = evaluate(
        config,
        rated=[{"kind": "review", "tags": {"genre": "Metal", "score": 7.5}, "up": 3, "down": 1}],
        cached={"k": ["same text", "same text", "other"]},
    )
    return report, out


@pytest.fixture(scope="module")
def report_dir(evaluated: tuple[EvalReport, Path]) -> Path:
    return evaluated[1]


def test_report_has_every_section_and_plot(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    for section in (
        "## Perplexity",
        "## Likelihood tag-ID",
        "## Condition adherence",
        "### Guidance 1",
        "### Guidance 2",
        "## Stops, copying and diversity",
        "## Human ratings",
        "## Plots",
    ):
        assert section in md
    assert "Warmed cache: 1 of 3 cached texts repeat another" in md
    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    assert {
        "confusion-review-genre.png",
        "confusion-lyrics-part.png",
        "score-review-score.png",
        "loss.png",
    } <= set(pngs)
    for png in pngs:
        assert (report_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in md


def test_report_json_holds_the_numbers(evaluated: tuple[EvalReport, Path]) -> None:
    typed, report_dir = evaluated
    report = json.loads((report_dir / "report.json").read_text())
    assert report["guidance"] == [1.0, 2.0]
    # Each kind sampled with the card's repetition penalty (this card names none per kind: the default).
    assert report["repetition_penalty"] == {"review": 1.1, "product": 1.1, "lyrics": 1.1}
    assert "repetition penalty review 1.1, product 1.1, lyrics 1.1" in (report_dir / "report.md").read_text()
    block = report["by_guidance"]["1"]
    assert set(block["adherence"]) >= {"review/genre", "review/score", "lyrics/part", "product/rating"}
    genre = block["adherence"]["review/genre"]
    # Three genres x five scores x two samples, judged; the same count for the floor.
    assert genre["generated"]["n"] == genre["floor"]["n"] == 30
    # Clean stops are counted over every generation at that scale (two per condition), and the
    # report's health table shows the same figure.
    generations = 2 * report["samples"]["conditions"]
    assert block["clean_stops"] * generations == pytest.approx(round(block["clean_stops"] * generations))
    health = next(
        line for line in (report_dir / "report.md").read_text().splitlines() if line.startswith("| 1 |")
    )
    assert health.startswith(f"| 1 | {100 * block['clean_stops']:.1f}% | 0.0% |")
    assert block["header_leaks"] == 0
    assert report["tag_id"]["lyrics/part"]["n"] > 0
    overall = next(r for r in report["perplexity"]["rows"] if r["kind"] == "all")
    assert 1 < overall["ppl"] < 5000 and overall["ppl"] == typed.perplexity.overall
    assert report["ratings"][0]["approval"] == 0.75
    assert report["cache_duplicates"] == {"n": 3, "duplicates": 1, "share": 1 / 3}


def test_judges_are_cached_beside_the_report(report_dir: Path, sample_data: Path) -> None:
    # Keyed by the training split they were fitted on (load_or_fit's reuse is tested in test_metrics).
    cached = joblib.load(report_dir / "judges.joblib")
    train = [i.record for i in read_split(sample_data, "train")]
    assert cached["key"]["data"] == fingerprint(train)
    assert {(j.kind, j.tag) for j in cached["judges"].values()} >= {("review", "genre"), ("review", "score")}


def test_compare_says_who_wins(
    evaluated: tuple[EvalReport, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI wiring only: each checkpoint is evaluated into its own directory with the same settings
    # (evaluation itself is the module's one full run; the winner logic is tested in test_metrics).
    report, _ = evaluated
    worse = replace(
        report, perplexity=Perplexity(1, [PerplexityRow("all", "", "", 10, 2 * report.perplexity.overall)])
    )
    seen: list[EvalConfig] = []

    def fake_evaluate(config: EvalConfig, rated, cached) -> EvalReport:
        seen.append(config)
        return report if config.checkpoint == "ckpt-a" else worse

    monkeypatch.setattr("linernotes.training.eval.run.evaluate", fake_evaluate)
    out = tmp_path / "cmp"
    argv = [
        "eval",
        "--compare",
        "ckpt-a",
        "ckpt-b",
        "--data",
        "d",
        "--out",
        str(out),
        "--guidance",
        "1",
        *SMALL,
    ]
    assert main(argv) == 0
    assert [(c.checkpoint, c.out) for c in seen] == [("ckpt-a", str(out / "A")), ("ckpt-b", str(out / "B"))]
    assert seen[0].samples == seen[1].samples == 2 and seen[0].guidance == (1.0,)
    text = (out / "compare.md").read_text()
    assert "| test perplexity |" in text and "| A |" in text and "A wins" in text
    assert json.loads((out / "compare.json").read_text())[0]["winner"] == "A"
    assert "-> A" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "--data", "d", "--out", "o"], "give one checkpoint, or --compare"),
        (["eval", "ck", "--data", "nowhere", "--out", "o"], "--data nowhere: no train.jsonl"),
        (["eval", "ck", "--data", "d", "--out", "o", "--samples", "0"], "--samples must be positive"),
        (
            ["eval", "ck", "--data", "d", "--out", "o", "--db", "missing.db"],
            "--db missing.db: no such database",
        ),
    ],
)
def test_bad_input_names_the_option(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_generated_texts_are_kept_per_scale_but_not_in_report_json(
    evaluated: tuple[EvalReport, Path],
) -> None:
    typed, report_dir = evaluated
    g = typed.generation
    assert set(g.texts) == {"1", "2"}
    assert all(len(texts) == 2 * g.samples.conditions for texts in g.texts.values())  # two per condition
    assert any(t.strip() for t in g.texts["2"])
    assert "texts" not in json.loads((report_dir / "report.json").read_text())
