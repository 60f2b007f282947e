"""Post-processing and seed sanitising, on plain strings."""

import pytest

from linernotes.model.postprocess import finish, fit, whole_sentences
from linernotes.model.seedline import sanitize_seed


def test_cut_reviews_end_at_a_full_sentence():
    assert finish("Loud and proud. The second half drags on and", "review", "length") == "Loud and proud."
    assert finish("Complete text without a stop", "review", "end") == "Complete text without a stop"
    # The model's end marker after a half sentence: the fragment goes, the whole sentences stay.
    assert finish("Loud and proud. The tracks of the same", "review", "end") == "Loud and proud."
    assert finish('It works. "Really."', "product", "end") == 'It works. "Really."'
    assert finish("no sentence end at all", "review", "length") == ""


def test_cut_lyrics_end_at_a_full_line():
    assert finish("line one\nline two\nline thr", "lyrics", "length") == "line one\nline two"
    assert finish("a\nb", "lyrics", "end") == "a\nb"


def test_header_start_and_escapes():
    assert finish("Good record. <|review|> genre: x", "review", "length") == "Good record."
    assert finish("A <\\| B.", "review", "end") == "A <| B."


def test_fit_never_cuts_mid_word():
    text = "word " * 2000
    out = fit(text.strip(), "review", 4096)
    assert len(out) <= 4096 and out.endswith("word…")
    prose = ("This is a sentence. " * 300).strip()
    assert fit(prose, "review", 4096).endswith("sentence.")
    assert whole_sentences("Dr. Who? yes! maybe") == "Dr. Who? yes!"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<|endoftext|>hello", "hello"),
        ("a <|lyrics|> part: chorus b", "a part: chorus b"),
        ("line\nbreak\r\nhere", "line break here"),
        ("zero\u200bwidth", "zero width"),
        ("<| open |> close", "open close"),
        ("", None),
        ("<|endoftext|>", None),
    ],
)
def test_seed_sanitising(raw, clean):
    assert sanitize_seed(raw) == clean


def test_seed_length_limit_cuts_at_a_word():
    out = sanitize_seed("abc " * 100, limit=30)
    assert len(out) <= 30 and not out.endswith(" ") and out.split() == ["abc"] * len(out.split())
