"""The prepare pipeline: cleaning, dedupe, stable splits, stats, and failure when nothing is usable."""

import json
from pathlib import Path

import pytest

from linernotes.cli.main import main
from linernotes.common.errors import ConfigError, InputError
from linernotes.data.config import DataConfig
from linernotes.data.prepare import prepare, summary
from linernotes.data.splits import assign_split, read_split


def write_reviews(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    lines = ["id,genre,score,text"] + [f'{i},{g},{s},"{t}"' for i, (t, g, s) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def review_rows(n: int, offset: int = 0) -> list[tuple[str, str, float]]:
    return [
        (f"Review number {k} of an album that sounds like number {k}.", "Rock", (k % 11) * 1.0)
        for k in range(offset, offset + n)
    ]


def config(tmp_path: Path, *sources: Path, **kw) -> DataConfig:
    return DataConfig(sources=[str(s) for s in sources], out=str(tmp_path / "out"), **kw)


def test_clean_dedupe_and_counts(tmp_path):
    rows = [
        ("Loud &amp; proud.<br />Second line   here.", "Metal", 7.5),
        ("LOUD & PROUD! Second line here", "Metal", 7.0),  # near duplicate of the first
        ("Tiny", "Jazz", 5.0),  # too short
        ("A fine record.Truly fine, a record worth hearing.", "Jazz", 8.0),
    ]
    result = prepare(config(tmp_path, write_reviews(tmp_path / "r.csv", rows)))
    texts = sorted(i.record.text for items in result.splits.values() for i in items)
    assert texts == ["A fine record. Truly fine, a record worth hearing.", "Loud & proud.\nSecond line here."]
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["rows_read"] == 4 and stats["kept"] == 2
    assert stats["dropped"] == {
        "duplicate (same text up to case, punctuation and spacing)": 1,
        "shorter than 20 characters (--min-chars)": 1,
    }
    assert stats["tags"]["review"]["genre"] == {"Metal": 1, "Jazz": 1}
    assert "kept 2 of 4 rows read" in summary(result)


def test_splits_are_stable_when_data_is_added(tmp_path):
    first = prepare(
        config(
            tmp_path, write_reviews(tmp_path / "a.csv", review_rows(200)), val_fraction=0.1, test_fraction=0.1
        )
    )
    before = {i.record.text: s for s, items in first.splits.items() for i in items}
    assert 0 < len(first.splits["val"]) < 40 and 0 < len(first.splits["test"]) < 40
    more = config(
        tmp_path,
        write_reviews(tmp_path / "b.csv", review_rows(200) + review_rows(100, 500)),
        val_fraction=0.1,
        test_fraction=0.1,
    )
    second = prepare(more)
    after = {i.record.text: s for s, items in second.splits.items() for i in items}
    assert all(after[t] == s for t, s in before.items())


def test_kept_duplicates_never_straddle_splits(tmp_path):
    rows = [(f"Same words again and again {k % 5}.", "Rock", float(k % 10)) for k in range(60)]
    result = prepare(
        config(
            tmp_path,
            write_reviews(tmp_path / "r.csv", rows),
            dedupe="none",
            val_fraction=0.3,
            test_fraction=0.3,
        )
    )
    where: dict[str, set[str]] = {}
    for split, items in result.splits.items():
        for item in items:
            where.setdefault(item.record.text, set()).add(split)
    assert len(where) == 5 and all(len(s) == 1 for s in where.values())


def test_split_assignment_is_a_pure_function():
    assert assign_split("song/x", 0.1, 0.1) == assign_split("song/x", 0.1, 0.1)
    splits = [assign_split(f"g{n}", 0.1, 0.2) for n in range(5000)]
    assert 0.17 < splits.count("test") / 5000 < 0.23 and 0.07 < splits.count("val") / 5000 < 0.13


def test_written_splits_read_back(tmp_path):
    prepare(config(tmp_path, write_reviews(tmp_path / "r.csv", review_rows(30))))
    items = read_split(tmp_path / "out", "train")
    assert items and all(i.record.kind == "review" for i in items)


def test_nothing_usable_fails_with_reasons(tmp_path):
    path = write_reviews(tmp_path / "r.csv", [("Good text but bad score here.", "Rock", 99.0)])
    with pytest.raises(InputError, match=r"no usable records(.|\n)*between 0 and 10"):
        prepare(config(tmp_path, path))
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_bad_options_are_named():
    with pytest.raises(ConfigError, match="--dedupe"):
        DataConfig(sources=["x"], out="o", dedupe="fuzzy")
    with pytest.raises(ConfigError, match="--val-fraction"):
        DataConfig(sources=["x"], out="o", val_fraction=0.9)


def test_cli_exit_codes_and_messages(tmp_path, capsys):
    path = write_reviews(tmp_path / "r.csv", review_rows(20))
    assert main(["prepare", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "kept 20 of 20 rows read" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o2")]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    assert main(["prepare", str(path), "--out", "o3", "--map", "text=nope"]) == 2
    assert "column 'nope' (mapped to text) not found" in capsys.readouterr().err


def _song(title: str | None, sections: int) -> str:
    head = f"# {title}\n" if title else ""
    return head + "\n\n".join(
        f"[Verse {n}]\nline one of verse {n} of {title}\nline two of verse {n} of {title}"
        for n in range(sections)
    )


def test_one_song_is_split_by_section(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text(_song(None, 30))
    result = prepare(config(tmp_path, path, kind="lyrics", val_fraction=0.2, test_fraction=0.0))
    # By song, the one song (one group) would land whole in one split; by section both get some.
    assert 20 <= len(result.splits["train"]) < 30 and result.splits["val"]


def test_training_is_never_left_empty(tmp_path):
    # Two songs whose titles both hash into validation: split by section instead.
    titles = [t for t in (f"Song {n}" for n in range(200)) if assign_split(f"/{t}", 0.2, 0.0) == "val"][:2]
    path = tmp_path / "two.txt"
    path.write_text("\n\n".join(_song(t, 8) for t in titles))
    result = prepare(config(tmp_path, path, kind="lyrics", val_fraction=0.2, test_fraction=0.0))
    assert len({i.group for i in result.splits["val"]}) <= 2 and len(result.splits["train"]) >= 8
    # A single text whose hash falls in validation trains rather than leave nothing to train on.
    text = next(t for t in (f"[Chorus]\nthe only chorus, take {n}" for n in range(200)) if _in_val(t))
    path.write_text(text)
    result = prepare(config(tmp_path, path, kind="lyrics", val_fraction=0.2, test_fraction=0.0))
    assert {s: len(items) for s, items in result.splits.items()} == {"train": 1, "val": 0, "test": 0}


def _in_val(text: str) -> bool:
    from linernotes.data.clean import dedupe_key

    return assign_split(f"text#{dedupe_key(text.split(chr(10), 1)[1])}", 0.2, 0.0) == "val"
