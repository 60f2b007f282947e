"""Lines longer than csv's default field limit (131,072 characters) are read or refused clearly."""

from __future__ import annotations

import json

from linernotes.cli.main import main

LONG = 140_000


def test_a_long_first_line_is_not_a_csv_error(tmp_path, capsys):
    source = tmp_path / "minified.txt"
    source.write_text("la " * (LONG // 3) + "\n")  # one enormous line where format detection reads a header
    assert main(["prepare", str(source), "--out", str(tmp_path / "out")]) in (0, 2)
    captured = capsys.readouterr()
    assert "field larger than field limit" not in captured.out + captured.err


def test_a_long_header_names_the_file(tmp_path, capsys):
    source = tmp_path / "wide.csv"
    source.write_text("x" * LONG + ",score\n1,2\n")
    assert main(["prepare", str(source), "--out", str(tmp_path / "out")]) == 2
    assert "wide.csv: unknown format; pass --format" in capsys.readouterr().err


def test_a_long_review_in_a_pitchfork_directory_is_read(tmp_path):
    tables = tmp_path / "pitchfork"
    tables.mkdir()
    text = "A record that rewards patience. " * (LONG // 30)
    (tables / "reviews.csv").write_text("reviewid,title,artist,score\n1,Long,Band,8.1\n2,Short,Band,6.0\n")
    (tables / "genres.csv").write_text("reviewid,genre\n1,rock\n2,rock\n")
    (tables / "content.csv").write_text(
        f'reviewid,content\n1,"{text}"\n2,"{"A short and fine review. " * 20}"\n'
    )
    out = tmp_path / "out"
    assert main(["prepare", str(tables), "--out", str(out), "--max-chars", str(10 * LONG)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["kept"] == 2
