"""Readers on small files in each published layout, written here; drops are counted with locations."""

import json
import sqlite3
from pathlib import Path

import pytest

from linernotes.cli.main import main
from linernotes.common.errors import InputError
from linernotes.data.readers import ReaderOptions, ReadReport, detect


def read(path: Path, kind=None, fmt=None, **opts):
    reader = detect(path, kind, fmt)
    report = ReadReport(str(path), reader.name)
    items = list(reader.read(path, ReaderOptions(**opts), report))
    return reader.name, items, report


def make_pitchfork_db(path: Path, with_content: bool = True) -> Path:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE reviews (reviewid INTEGER, title TEXT, artist TEXT, score REAL)")
    db.execute("CREATE TABLE genres (reviewid INTEGER, genre TEXT)")
    db.executemany(
        "INSERT INTO reviews VALUES (?,?,?,?)",
        [(1, "a", "x", 8.1), (2, "b", "y", 3.0), (3, "c", "z", 5.5), (2, "b", "y", 3.0)],
    )
    db.executemany("INSERT INTO genres VALUES (?,?)", [(1, "pop/r&b"), (1, "rock"), (2, "metal"), (3, None)])
    if with_content:
        db.execute("CREATE TABLE content (reviewid INTEGER, content TEXT)")
        db.executemany(
            "INSERT INTO content VALUES (?,?)",
            [(1, "Smooth and bright, full of hooks."), (2, "Heavy &amp; slow."), (3, "No genre.")],
        )
    db.commit()
    db.close()
    return path


def test_pitchfork_sqlite_takes_first_genre_and_counts_drops(tmp_path):
    name, items, report = read(make_pitchfork_db(tmp_path / "pitchfork.sqlite"))
    assert name == "pitchfork-sqlite"
    assert [(i.record.tags["genre"], i.record.tags["score"]) for i in items] == [
        ("Pop/R&B", 8.1),
        ("Metal", 3.0),
    ]
    assert report.rows == 4 and report.kept == 2
    assert report.dropped == {"duplicate reviewid": 1, "no genre": 1}
    assert any("1 reviews list several genres" in n for n in report.notes)


def test_pitchfork_without_content_says_exactly_that(tmp_path):
    path = make_pitchfork_db(tmp_path / "p.db", with_content=False)
    with pytest.raises(InputError, match=r"4 reviews .* no review text: the file has no `content` table"):
        read(path)


def test_pitchfork_csv_directory(tmp_path):
    d = tmp_path / "pf"
    d.mkdir()
    (d / "pitchfork_reviews.csv").write_text('"reviewid","score"\n1,7.2\n2,NA\n')
    (d / "pitchfork_genres.csv").write_text('"reviewid","genre"\n1,"jazz"\n2,"rap"\n')
    with pytest.raises(InputError, match="2 reviews .* no content.csv or pitchfork_content.csv"):
        read(d)
    (d / "content.csv").write_text('reviewid,content\n1,"Modal and patient."\n2,"Bars for days."\n')
    name, items, report = read(d)
    assert name == "pitchfork-csv"
    assert [i.record.tags for i in items] == [{"genre": "Jazz", "score": 7.2}]
    assert report.dropped == {"tag 'score' is required": 1}


def test_generic_csv_with_mapping_and_bad_rows(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,style,mark\nGreat riffs all over.,Metal,9\nMeh.,Jazz,n/a\nToo much.,Rock,11\n")
    name, items, report = read(
        path, "review", "table", mapping={"text": "review", "genre": "style", "score": "mark"}
    )
    assert name == "table" and len(items) == 1 and items[0].record.tags == {"genre": "Metal", "score": 9.0}
    assert report.dropped == {"tag 'score' must be a number": 1, "tag 'score' must be between 0 and 10": 1}
    assert report.where["tag 'score' must be a number"][0].startswith("reviews.csv:line 3")


def test_mapped_column_that_does_not_exist_is_named(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("body,genre,score\nx,Rock,5\n")
    with pytest.raises(
        InputError, match=r"r.csv: column 'review' \(mapped to text\) not found; columns are: body"
    ):
        read(path, "review", "table", mapping={"text": "review"})
    with pytest.raises(InputError, match=r"no column for 'text'.*--map text=COLUMN"):
        read(path, "review", "table")


def test_mcauley_json_lines_with_min_helpful(tmp_path):
    path = tmp_path / "Musical_Instruments_5.json"
    rows = [
        {
            "reviewerID": "A",
            "asin": "1",
            "helpful": [3, 4],
            "reviewText": "Works.",
            "overall": 5.0,
            "summary": "Good",
        },
        {
            "reviewerID": "B",
            "asin": "1",
            "helpful": [0, 0],
            "reviewText": "Broke.",
            "overall": 1.0,
            "summary": "Bad",
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    name, items, report = read(path, min_helpful=1)
    assert name == "mcauley"
    assert [i.record.tags for i in items] == [{"rating": 5, "headline": "Good"}]
    assert report.dropped == {"fewer than 1 helpful votes (--min-helpful)": 1, "invalid JSON": 1}


def test_amazon_tsv_keeps_stray_quotes(tmp_path):
    path = tmp_path / "amazon_reviews_us_Music.tsv"
    path.write_text(
        "review_id\tstar_rating\thelpful_votes\treview_headline\treview_body\n"
        'R1\t4\t2\tSolid "live" album\tThe 12" pressing is great\n'
    )
    name, items, _ = read(path)
    assert name == "amazon-tsv"
    assert items[0].record.tags == {"rating": 4, "headline": 'Solid "live" album'}
    assert items[0].record.text == 'The 12" pressing is great'


def test_datafiniti_empty_ratings_and_votes(tmp_path):
    path = tmp_path / "7817_1.csv"
    path.write_text(
        "id,reviews.rating,reviews.title,reviews.text,reviews.numHelpful,reviews.username,reviews.date\n"
        "P1,5,Love it,Great reader.,,ann,2015\nP1,,No stars,Text here.,3,bob,2016\n"
    )
    name, items, report = read(path)
    assert name == "datafiniti" and len(items) == 1
    assert report.dropped == {"tag 'rating' is required": 1}
    assert any("1 rows have no helpful-vote count" in n for n in report.notes)


GENIUS_SONG = (
    "49 ContributorsTranslationsDeutschEspañolPaper Moon Lyrics[Verse 1]\nWe drove all night\nTo see the sea\n\n"
    "[Chorus: Marigold Static]\nPaper moon, paper moon\nShine on me soon\nYou might also like[Verse 2]\n"
    "Second verse here [?]\nSee Marigold Static LiveGet tickets as low as $42\n\n[HAMILTON]\nNot a part\n\n"
    "[Chorus]\nPaper moon, paper moon\nShine on me soon22Embed"
)


def test_genius_json_strips_boilerplate_and_splits_sections(tmp_path):
    path = tmp_path / "Marigold_Static.json"
    path.write_text(json.dumps({"Paper Moon": GENIUS_SONG}))
    name, items, report = read(path)
    assert name == "genius-json"
    parts = [(i.record.tags["part"], i.record.text) for i in items]
    assert parts == [
        ("verse", "We drove all night\nTo see the sea"),
        ("chorus", "Paper moon, paper moon\nShine on me soon"),
        ("verse", "Second verse here [?]"),
        ("chorus", "Paper moon, paper moon\nShine on me soon"),
    ]
    assert {i.record.tags["artist"] for i in items} == {"Marigold Static"}
    assert report.dropped == {"section label is not a song part": 1}
    assert report.tallies["boilerplate removed"] == {
        "contributors/title prefix": 1,
        "'You might also like'": 1,
        "ticket ads": 1,
        "NEmbed": 1,
    }
    assert len({i.group for i in items}) == 1  # one song, one split


def test_sectioned_text_takes_artist_from_header(tmp_path):
    path = tmp_path / "song.txt"
    path.write_text("# Dust Road\n[Verse 1: Dusty Harlan]\nOld truck\nRusty gate\n\n[Bridge]\nRiver low\n")
    name, items, _ = read(path)
    assert name == "lyrics-text"
    assert [(i.record.tags.get("artist"), i.record.tags["part"]) for i in items] == [
        ("Dusty Harlan", "verse"),
        (None, "bridge"),
    ]
    assert "title" not in items[0].record.tags and items[0].group == items[1].group
    _, titled, _ = read(path, titles=True)
    assert titled[0].record.tags["title"] == "Dust Road"


def test_songs_file_separators(tmp_path):
    path = tmp_path / "june-bell.txt"
    path.write_text("a1\na2\n\na3\n\n\nb1\nb2\n\n\n\nc1\n")
    name, items, report = read(path)
    assert name == "songs-text"
    assert [i.record.text for i in items] == ["a1\na2\n\na3", "b1\nb2", "c1"]
    assert items[0].record.tags == {"part": "song", "artist": "June Bell"}
    assert not report.warnings


def test_songs_file_without_separators_warns_and_chunks(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("\n".join(f"line {n} [Chorus]" for n in range(45)))
    _, items, report = read(path, chunk_lines=20)
    assert len(items) == 3 and "[Chorus]" not in items[0].record.text
    assert "no blank lines separate songs; split into 3 chunks of 20 lines" in report.warnings[0]


def test_undecodable_bytes_are_counted_not_fatal(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"text,genre,score\nfine text,Rock,5\nbad \xff\xfe bytes,Rock,6\n")
    _, items, report = read(path, "review")
    assert len(items) == 1
    assert report.dropped == {"undecodable bytes (not UTF-8)": 1}
    assert report.where["undecodable bytes (not UTF-8)"] == ["r.csv:line 3"]


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "notes.xml").write_text("<x/>")
    with pytest.raises(InputError, match="notes.xml: unknown format; pass --format"):
        detect(tmp_path / "notes.xml", None, None)
    with pytest.raises(InputError, match="nope.csv: file not found"):
        read(tmp_path / "nope.csv", "review", "table")
    (tmp_path / "m.json").write_text('{"reviewerID": "A", "overall": 5.0, "reviewText": "x"}\n')
    with pytest.raises(InputError, match="holds product records, not --kind review"):
        detect(tmp_path / "m.json", "review", None)


def test_deep_json_is_refused_clearly_in_every_reader(tmp_path, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    for name, text in [
        ("deep.json", deep),  # a JSON array (the table reader), nested far too deep
        ("genius.json", '{"Song": ' + deep + "}"),  # an object, as Genius JSON is
        ("rows.jsonl", '{"text": "a fine text here", "part": "chorus"}\n{"text": ' + deep + "}\n"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        if name == "rows.jsonl":  # JSON lines: the deep row is dropped, the others read
            _, items, report = read(path, "lyrics")
            assert len(items) == 1 and report.dropped == {"JSON nested deeper than 64 levels": 1}
            continue
        with pytest.raises(InputError, match=f"{name}: JSON nested deeper than 64 levels"):
            read(path, "lyrics")
        assert main(["prepare", str(path), "--kind", "lyrics", "--out", str(tmp_path / "o")]) == 2
        assert f"{name}: JSON nested deeper than 64 levels" in capsys.readouterr().err
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps([{"text": "nested but fine", "part": "verse", "x": [[[["a"]]]]}] * 50))
    assert len(read(ok, "lyrics")[1]) == 50
