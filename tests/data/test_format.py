"""The tag format round-trips arbitrary metadata and never lets markers through."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linernotes.common.errors import FormatError
from linernotes.data.format import (
    END,
    HEADER_OPEN,
    PARTS,
    RENDERINGS,
    contrast_tags,
    escape_body,
    header,
    make_record,
    normalize_part,
    parse,
    prompt,
    read_header,
    render,
    score_words,
    unescape_body,
)

# Text with the characters that matter: separators, escapes, markers, newlines, emoji.
tricky = st.text(alphabet=st.sampled_from(list("ab :|\\<>[]\n\r🎸é")) | st.characters(), min_size=1).filter(
    lambda s: s.strip()
)
marker_text = st.sampled_from([END, "<|review|>", "<\\|", "a|b", "x\\", "\\|", "<|", "|>"]) | tricky
scores = st.integers(0, 100).map(lambda n: n / 10)


@st.composite
def records(draw):
    kind = draw(st.sampled_from(["review", "product", "lyrics"]))
    if kind == "review":
        tags = {"genre": draw(marker_text), "score": draw(scores)}
    elif kind == "product":
        tags = {"rating": draw(st.integers(1, 5)), "headline": draw(st.none() | marker_text)}
    else:
        tags = {
            "part": draw(st.sampled_from(PARTS)),
            "artist": draw(st.none() | marker_text),
            "title": draw(st.none() | marker_text),
        }
    body = draw(st.text() | marker_text)
    return make_record(kind, tags, body)


@given(records(), st.sampled_from(RENDERINGS))
def test_parse_inverts_render_in_every_rendering(record, rendering):
    text = render(record, rendering)
    assert parse(text) == record
    # The rendering is read back too (an unconditioned header and lyrics say nothing in words).
    said = read_header(text.partition("\n")[0])[2]
    assert said == rendering or (
        rendering == "words" and said == "prose" and not {"score", "rating"} & set(record.tags)
    )
    # The only marker in the rendered text is the final end marker; the header is one line.
    assert text.count(HEADER_OPEN) == 2 and text.endswith(END)
    head, _, body = text.partition("\n")
    assert head.startswith(f"<|{record.kind}|>")
    assert HEADER_OPEN not in body[: -len(END)]


@given(st.text())
def test_body_escape_round_trips_and_removes_markers(text):
    escaped = escape_body(text)
    assert HEADER_OPEN not in escaped
    assert unescape_body(escaped) == text


def test_end_marker_as_genre_cannot_end_an_example():
    text = render(make_record("review", {"genre": END, "score": 5}, "Loud."))
    assert text.count(END) == 1 and text.endswith(END)
    assert parse(text).tags["genre"] == END


def test_prompt_is_the_header_render_starts_with():
    record = make_record("lyrics", {"part": "Chorus", "artist": "Iron Chapel"}, "We ride")
    p = prompt("lyrics", part="chorus", artist="Iron Chapel")
    assert p == "<|lyrics|> part: chorus | artist: Iron Chapel\n"
    assert render(record).startswith(p)


def test_unconditioned_header_round_trips():
    record = make_record("review", {}, "Some text")
    assert render(record) == "<|review|>\nSome text" + END
    assert parse(render(record)) == record
    assert prompt("review") == header("review", {})


@pytest.mark.parametrize(
    ("label", "part"),
    [
        ("Verse 2", "verse"),
        ("PRE-CHORUS", "pre-chorus"),
        ("Pre Chorus", "pre-chorus"),
        ("Hook", "hook"),
        ("post_chorus", "post-chorus"),
        ("Outro", "outro"),
    ],
)
def test_part_labels_normalise(label, part):
    assert normalize_part(label) == part


@pytest.mark.parametrize(
    ("kind", "tags", "message"),
    [
        ("review", {"genre": "Metal", "score": 11}, "between 0 and 10"),
        ("review", {"genre": "Metal", "score": "high"}, "must be a number"),
        ("review", {"genre": "Metal"}, "'score' is required"),
        ("review", {"genre": " ", "score": 5}, "non-empty"),
        ("product", {"rating": 4.5}, "whole number"),
        ("lyrics", {"part": "Interlude"}, "part 'Interlude' is not one of"),
        ("lyrics", {"part": "chorus", "mood": "sad"}, "unknown tag 'mood'"),
        ("poem", {}, "unknown kind 'poem'"),
    ],
)
def test_bad_tags_name_the_problem(kind, tags, message):
    with pytest.raises(FormatError, match=message):
        make_record(kind, tags, "x")


def test_scores_keep_one_decimal():
    assert make_record("review", {"genre": "Jazz", "score": 7.46}, "x").tags["score"] == 7.5
    assert "score: 7.0" in render(make_record("review", {"genre": "Jazz", "score": 7}, "x"))


@pytest.mark.parametrize(
    "bad",
    [
        "no header",
        "<|review|> genre Metal\nx",
        "<|review|>genre: x\nx",
        "<|review|> genre: a\\q | score: 1.0\nx",
        "<|review|>\nbody <| more",
    ],
)
def test_malformed_text_is_rejected(bad):
    with pytest.raises(FormatError):
        parse(bad)


@pytest.mark.parametrize(
    ("kind", "tags", "prose", "words"),
    [
        (
            "review",
            {"genre": "Metal", "score": 7.5},
            "<|review|> A review of a Metal album, scored 7.5 out of 10.",
            "<|review|> A review of a Metal album, scored 7.5 out of 10 (very good).",
        ),
        (
            "review",
            {"genre": "Electronic", "score": 2},
            "<|review|> A review of an Electronic album, scored 2.0 out of 10.",
            "<|review|> A review of an Electronic album, scored 2.0 out of 10 (terrible).",
        ),
        (
            "product",
            {"rating": 1, "headline": 'Died in a "week"'},
            '<|product|> A product review, rated 1 out of 5 stars, headlined "Died in a \\"week\\"".',
            '<|product|> A product review, rated 1 out of 5 stars (terrible), headlined "Died in a \\"week\\"".',
        ),
        (
            "lyrics",
            {"part": "verse", "artist": "Iron Chapel", "title": "Ash"},
            '<|lyrics|> A verse of a song by Iron Chapel, titled "Ash".',
            '<|lyrics|> A verse of a song by Iron Chapel, titled "Ash".',
        ),
        (
            "lyrics",
            {"part": "song"},
            "<|lyrics|> The full lyrics of a song.",
            "<|lyrics|> The full lyrics of a song.",
        ),
        ("product", {}, "<|product|> A product review.", "<|product|> A product review."),
    ],
)
def test_prose_renderings_read_as_english(kind, tags, prose, words):
    assert prompt(kind, rendering="prose", **tags) == prose + "\n"
    assert prompt(kind, rendering="words", **tags) == words + "\n"


def test_score_words_cover_the_scale_in_order():
    said = [score_words(s / 10) for s in range(0, 101)]
    assert said[0] == "terrible" and said[-1] == "outstanding"
    assert [score_words(s) for s in (2.0, 4.0, 6.0, 7.5, 9.0)] == [
        "terrible",
        "poor",
        "mediocre",
        "very good",
        "outstanding",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "<|review|> A review of a Metal album, scored 7.5 out of 10 (very bad).",  # words that do not fit
        "<|review|> A review of an Metal album, scored 7.5 out of 10.",  # not what render says
        "<|lyrics|> The interlude of a song.",
        "<|product|> A product review, rated 6 out of 5 stars.",
        "<|review|> A review of a Metal album.",
    ],
)
def test_prose_that_render_would_not_write_is_rejected(bad):
    with pytest.raises(FormatError):
        read_header(bad)


def test_contrast_swaps_a_reviews_genre_for_another_known_one_by_pick():
    span, known = (0.8, 10.0), ["Rock", "Metal", "Jazz", "Rap"]
    ask = {"genre": "Metal", "score": 2.0}
    # The others in a fixed order (Jazz, Rap, Rock), the pick wrapping round them: a seed picks one.
    picked = [contrast_tags("review", ask, span, known, pick) for pick in range(4)]
    assert [c["genre"] for c in picked if c] == ["Jazz", "Rap", "Rock", "Jazz"]
    assert all(c is not None and c["score"] == 8.8 for c in picked)  # the score is mirrored as well
    # A middle score still contrasts: by its genre alone.
    assert contrast_tags("review", {"genre": "Metal", "score": 5.4}, span, known, 1) == {
        "genre": "Rap",
        "score": 5.4,
    }
    # No other genre known: as without; products have no genre to swap.
    assert contrast_tags("review", {"genre": "Metal", "score": 5.4}, span, ["Metal"], 1) is None
    assert contrast_tags("product", {"rating": 1}, span, known, 1) == {"rating": 5}


def test_contrast_swaps_a_songs_part_and_keeps_its_artist():
    span, parts = (0.8, 10.0), ["verse", "chorus", "bridge"]
    ask = {"part": "chorus", "artist": "Nina"}
    picked = [contrast_tags("lyrics", ask, span, parts, pick) for pick in range(3)]
    assert picked == [
        {"part": "bridge", "artist": "Nina"},
        {"part": "verse", "artist": "Nina"},
        {"part": "bridge", "artist": "Nina"},
    ]
    # Nothing to swap: no other part known, or no part asked for.
    assert contrast_tags("lyrics", {"part": "chorus"}, span, ["chorus"], 1) is None
    assert contrast_tags("lyrics", {"artist": "Nina"}, span, parts, 1) is None


def test_an_unknown_rendering_names_the_known_ones():
    with pytest.raises(FormatError, match="renderings are: tags, prose, words"):
        prompt("review", rendering="poetry", genre="Jazz", score=3)


def test_contrast_mirrors_the_score_or_rating_and_keeps_the_rest():
    span = (0.8, 10.0)
    review = contrast_tags("review", {"genre": "Metal", "score": 2.0}, span)
    assert review == {"genre": "Metal", "score": 8.8}
    assert contrast_tags("review", review, span) == {"genre": "Metal", "score": 2.0}  # mirrored back
    assert contrast_tags("review", {"genre": "Jazz", "score": 10.0}, (2.0, 9.0)) == {
        "genre": "Jazz",
        "score": 2.0,
    }
    rated = contrast_tags("product", {"rating": 1, "headline": "Loud"}, span)
    assert rated == {"rating": 5, "headline": "Loud"}
    # Nothing to mirror: the middle of the range, the middle star, lyrics, an unconditioned request.
    assert contrast_tags("review", {"genre": "Metal", "score": 5.4}, span) is None
    assert contrast_tags("product", {"rating": 3}, span) is None
    assert contrast_tags("lyrics", {"part": "chorus"}, span) is None  # no other part known
    assert contrast_tags("review", {}, span) is None
    # What it gives is a header like any other, in every rendering.
    for rendering in RENDERINGS:
        assert read_header(header("review", review, rendering).rstrip("\n"))[:2] == ("review", review)
