"""``linernotes eval`` end to end on the tiny model: every section and plot, and ``--compare``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from training.eval.config import EvalConfig
from training.eval.run import evaluate

SMALL = ["--samples", "2", "--max-values", "3", "--max-new-tokens", "24", "--tag-id-examples", "12"]


@pytest.fixture(scope="module")
def report_dir(tiny_fp32: Path, sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
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
    evaluate(
        config,
        rated=[{"kind": "review", "tags": {"genre": "Metal", "score": 7.5}, "up": 3, "down": 1}],
        cached={"k": ["same text", "same text", "other"]},
    )
    return out


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


def test_report_json_holds_the_numbers(report_dir: Path) -> None:
    report = json.loads((report_dir / "report.json").read_text())
    assert report["guidance"] == [1.0, 2.0]
    block = report["by_guidance"]["1"]
    assert set(block["adherence"]) >= {"review/genre", "review/score", "lyrics/part", "product/rating"}
    genre = block["adherence"]["review/genre"]
    # Three genres x five scores x two samples, judged; the same count for the floor.
    assert genre["generated"]["n"] == genre["floor"]["n"] == 30
    assert 0 <= block["clean_stops"] <= 1 and block["header_leaks"] == 0
    assert report["tag_id"]["lyrics/part"]["n"] > 0
    overall = next(r for r in report["perplexity"]["rows"] if r["kind"] == "all")
    assert 1 < overall["ppl"] < 5000
    assert report["ratings"][0]["approval"] == 0.75


def test_judges_are_cached_beside_the_report(report_dir: Path, tiny_fp32: Path, sample_data: Path) -> None:
    cache = report_dir / "judges.joblib"
    before = cache.stat().st_mtime_ns
    evaluate(
        EvalConfig(
            str(tiny_fp32),
            str(sample_data),
            str(report_dir),
            samples=1,
            max_values=3,
            max_new_tokens=8,
            tag_id_examples=2,
        )
    )
    assert cache.stat().st_mtime_ns == before


def test_compare_says_who_wins(
    tiny_fp32: Path,
    tiny_checkpoint: Path,
    sample_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "cmp"
    code = main(
        [
            "eval",
            "--compare",
            str(tiny_fp32),
            str(tiny_checkpoint),
            "--data",
            str(sample_data),
            "--out",
            str(out),
            "--guidance",
            "1",
            *SMALL,
        ]
    )
    assert code == 0
    text = (out / "compare.md").read_text()
    assert "| test perplexity |" in text and "wins" in text
    assert (out / "A" / "report.md").is_file() and (out / "B" / "report.md").is_file()
    assert "-> " in capsys.readouterr().out


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
