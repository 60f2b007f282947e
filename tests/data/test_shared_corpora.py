"""Every corpus under ../shared/corpora prepares, with the counts its SOURCE.md describes."""

import json
import re
from pathlib import Path

import pytest

from linernotes.common.errors import InputError
from linernotes.data.config import DataConfig
from linernotes.data.prepare import prepare
from tests.conftest import REPO
from tests.data import corpora
from tests.data.corpora import shared


def run(tmp_path, path, **kw):
    result = prepare(DataConfig(sources=[str(path)], out=str(tmp_path / "out"), **kw))
    return result, [i for items in result.splits.values() for i in items]


def test_genius_lyrics(tmp_path):
    result, items = run(tmp_path, shared("genius-lyrics-100artists"))
    genius = [r for r in result.reports if r.reader == "genius-json"]
    assert len(genius) == 100
    parts = sum((r.tallies["sections by part"] for r in genius), start=__import__("collections").Counter())
    # SOURCE.md: Chorus 2,777; Verse 2,161; Bridge 676; Outro 516; Post-Chorus 495; Intro 275; Refrain 147.
    # Pre-Chorus: 1,323 there, 1,325 here: two headers are spelled "[Pre - Chorus]".
    assert parts == {
        "chorus": 2777,
        "verse": 2161,
        "pre-chorus": 1325,
        "bridge": 676,
        "outro": 516,
        "post-chorus": 495,
        "intro": 275,
        "refrain": 147,
        "hook": 16,
    }
    removed = sum(
        (r.tallies["boilerplate removed"] for r in genius), start=__import__("collections").Counter()
    )
    assert removed["contributors/title prefix"] == 992 and removed["NEmbed"] == 992
    assert removed["'You might also like'"] == 992 and removed["ticket ads"] == 430
    assert len({i.record.tags["artist"] for i in items}) == 100
    boilerplate = re.compile(r"\d+ Contributors|You might also like|Embed$|tickets as low as|Lyrics\[")
    assert not [i.record.text for i in items if boilerplate.search(i.record.text)]
    assert not [i for i in items if re.search(r"^\[.*\]$", i.record.text, re.MULTILINE)]


def test_mcauley(tmp_path):
    _, items = run(tmp_path, shared("amazon-mcauley-musical-instruments"))
    ratings = __import__("collections").Counter(i.record.tags["rating"] for i in items)
    assert ratings == {5: 34, 4: 13, 3: 2, 2: 1}  # SOURCE.md: 5.0 x34, 4.0 x13, 3.0 x2, 2.0 x1
    _, helpful = run(tmp_path, shared("amazon-mcauley-musical-instruments"), min_helpful=1)
    assert 0 < len(helpful) <= 7  # 7 rows have total votes > 0


def test_datafiniti(tmp_path):
    result, items = run(tmp_path, shared("amazon-datafiniti-electronics"), dedupe="none")
    report = next(r for r in result.reports if r.reader == "datafiniti")
    assert report.rows == 100 and report.dropped == {"tag 'rating' is required": 61}  # 61 empty ratings
    ratings = __import__("collections").Counter(i.record.tags["rating"] for i in items)
    assert ratings == {5: 23, 4: 13, 3: 3}
    assert any("88 rows have no helpful-vote count" in n for n in report.notes)


def test_artist_txt_files(tmp_path):
    result, items = run(tmp_path, shared("artist-lyrics-txt"))
    warnings = [w for r in result.reports for w in r.warnings if "no blank lines" in w]
    assert len(warnings) == 3  # SOURCE.md: no file has a blank line
    assert {i.record.tags["artist"] for i in items} == {"Adele", "Beatles", "Bruno Mars"}


def test_pitchfork_tables_without_content(tmp_path):
    with pytest.raises(InputError) as e:
        run(tmp_path, shared("pitchfork-nolan-tables"))
    assert "18,393 reviews" in str(e.value) and "no content.csv or pitchfork_content.csv" in str(e.value)


def test_stats_json_is_complete(tmp_path):
    run(tmp_path, shared("amazon-mcauley-musical-instruments"))
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert set(stats) >= {"rows_read", "kept", "dropped", "splits", "tokens", "tags", "sources", "config"}


def test_the_corpora_are_found_through_a_symlinked_checkout(tmp_path):
    # CI-like: the shell reaches the checkout through a link, and shared/ lies beside the link.
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "main").symlink_to(REPO)
    assert corpora.checkouts(str(tmp_path / "ws" / "main" / "tests")) == [tmp_path / "ws" / "main", REPO]
    assert corpora.places(str(tmp_path / "ws" / "main"), env="/named") == [
        Path("/named"),
        tmp_path / "ws" / "shared",
        REPO.parent / "shared",
    ]
    assert corpora.checkouts("/") == [REPO]


def test_a_missing_corpus_skips_but_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-corpus is not beside this checkout"):
        corpora.shared("no-such-corpus")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI lays shared/ beside the checkout"):
        corpora.shared("no-such-corpus")
