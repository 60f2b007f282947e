"""Near-duplicate detection: near-identical texts merge, different ones stay, and prepare says why."""

from __future__ import annotations

import json
from pathlib import Path

from linernotes.data.config import DataConfig
from linernotes.data.dedupe import NearDuplicates, jaccard, shingles
from linernotes.data.prepare import NEAR, prepare, summary

CHORUS = "We ride the midnight highway, hearts on fire tonight\nNo one's gonna stop us, we were born to fight"
# One word changed in twenty-one: 18 of 22 word pairs shared.
CHORUS_AGAIN = CHORUS.replace("born", "made")
# Two words changed: a different line of the song, not a copy.
VARIANT = CHORUS.replace("born", "made").replace("midnight", "morning")
OTHER = "Morning light on the kitchen table, coffee going cold\nYou said you'd stay a little longer"


def test_shingles_are_word_pairs_case_and_punctuation_aside() -> None:
    assert shingles("Hold ON, hold on!") == {b"hold on", b"on hold"}
    assert shingles("Alone") == {b"alone"}
    assert jaccard(shingles(CHORUS), shingles(CHORUS_AGAIN)) == 17 / 21


def test_near_identical_texts_merge_and_different_ones_stay() -> None:
    index = NearDuplicates()
    assert index.match("a", CHORUS) is None
    assert index.match("b", OTHER) is None
    twin = index.match("c", CHORUS_AGAIN)
    assert twin is not None and twin[0] == "a" and twin[1] >= 0.8
    assert index.match("d", VARIANT) is None  # below the threshold, so kept (and remembered)
    assert index.match("e", VARIANT.upper()) == ("d", 1.0)


def write_lyrics(path: Path, texts: list[str]) -> Path:
    lines = ["id,part,text"] + [f'{i},chorus,"{t}"' for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prepare_drops_near_duplicates_and_says_why(tmp_path: Path) -> None:
    source = write_lyrics(tmp_path / "songs.csv", [CHORUS, OTHER, CHORUS_AGAIN, VARIANT])
    result = prepare(DataConfig(sources=[str(source)], out=str(tmp_path / "out"), kind="lyrics"))
    kept = sorted(i.record.text for items in result.splits.values() for i in items)
    assert kept == sorted([CHORUS, OTHER, VARIANT])
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["dropped"] == {NEAR: 1}
    (pipeline,) = [s for s in stats["sources"] if s["source"] == "pipeline"]
    # Each chorus takes two lines of the file: the third text starts on line 6, the first on line 2.
    assert pipeline["examples"][NEAR] == ["songs.csv:line 6 ~ songs.csv:line 2 (similarity 0.81)"]
    assert f"after reading, dropped 1: {NEAR} (e.g. songs.csv:line 6 ~ songs.csv:line 2" in summary(result)


WORDS = ("oh", "my", "love", "the", "night", "is", "long", "and", "I", "am", "far", "from", "home", "so")


def song(k: int) -> str:
    """A chorus of fourteen words no other song shares."""
    return " ".join(f"{word}{k}" for word in WORDS)


def test_kept_near_duplicates_stay_in_one_split(tmp_path: Path) -> None:
    # Forty songs, each chorus written three times two words apart in a chain (a~b, b~c, but not a~c):
    # with --dedupe exact all are kept, and each chain stays in one split.
    chains = [(song(k), song(k) + " yeah baby", song(k) + " yeah baby come on") for k in range(40)]
    source = write_lyrics(tmp_path / "songs.csv", [t for chain in chains for t in chain])
    result = prepare(
        DataConfig(
            sources=[str(source)],
            out=str(tmp_path / "out"),
            kind="lyrics",
            dedupe="exact",
            val_fraction=0.3,
            test_fraction=0.3,
        )
    )
    split_of = {i.record.text: s for s, items in result.splits.items() for i in items}
    assert len(split_of) == 120
    assert all(len({split_of[t] for t in chain}) == 1 for chain in chains)
    assert len(set(split_of.values())) == 3  # while the songs themselves went to every split
