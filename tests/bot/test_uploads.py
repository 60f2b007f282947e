"""What a member's upload gives and what they are told: splits that keep enough to train whatever the
file's name, refusals in the file's terms (no host path, no CLI option), sizes that read right, file
names shown safely and within Discord's limits, and model names only for those who may use /model."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
import simcord

from linernotes.bot.registry import ModelRegistry
from linernotes.bot.uploads import UploadError, check_upload, prepare_upload, shown
from linernotes.data.readers.jsontext import MAX_DEPTH
from tests.bot.test_server_models import bot_settings, emit, manager, models_of, until_training, upload  # noqa: F401

pytestmark = pytest.mark.simcord(settle_timeout=240)
DISCORD_LIMIT = 2000
RLO = "\u202e"


def untitled_song(sections: int) -> str:
    """One song without a ``# Title`` line: a single group for the by-song split."""
    return "\n\n".join(
        f"[Verse {n}]\n" + "\n".join(f"line {k} of verse {n}, about the harbor and the sea" for k in range(4))
        for n in range(sections)
    )


def prepared(tmp_path: Path, name: str, text: str):
    folder = tmp_path / name.replace(".", "_")
    folder.mkdir()
    path = folder / name
    path.write_text(text)
    return prepare_upload(path, folder / "prepared")


def refused(tmp_path: Path, name: str, text: str) -> str:
    with pytest.raises(UploadError) as caught:
        prepared(tmp_path, name, text)
    return str(caught.value)


# --- item 8: enough to train on, whatever the file is called -------------------------------------


def test_one_untitled_song_trains_under_any_file_name(tmp_path):
    song = untitled_song(30)
    splits = {prepared(tmp_path, f"{stem}.txt", song).splits["train"] for stem in _names(40)}
    # The split no longer hangs on the file name's hash: one song is split by section.
    assert len(splits) == 1 and 20 <= splits.pop() < 30


def test_a_one_section_upload_still_trains(tmp_path):
    for stem in _names(10):
        result = prepared(tmp_path, f"{stem}.txt", untitled_song(1))
        assert result.splits == {"train": 1, "val": 0, "test": 0}


def _names(n: int) -> list[str]:
    return [f"my song {k}" for k in range(n)] + [f"take_{k}" for k in range(n // 2)]


# --- item 9: refusals and reports in the file's terms --------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("plain.txt", "just one line", "nothing in it is usable (1 shorter than 20 characters)"),
        ("rows.json", '[{"lyrics": "la la la la la la la la"}]', "no 'text' field in its rows"),
        ("broken.json", '\n{"a": "b",}\n', "it is not valid JSON (Expecting property name"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, f"its JSON is nested deeper than {MAX_DEPTH} levels"),
    ],
)
def test_refusals_name_no_host_path_or_option(tmp_path, name, text, expected):
    message = refused(tmp_path, name, text)
    assert message.startswith(f"`{name}`: {expected}")
    assert str(tmp_path) not in message and "--" not in message and "COLUMN" not in message
    assert "send .txt lyrics with [Verse]/[Chorus] headers" in message


def test_what_was_dropped_reads_without_options(tmp_path):
    text = untitled_song(6) + "\n\n[Chorus]\n" + "la " * 8000 + "\n\n[Bridge]\nshort"
    result = prepared(tmp_path, "songs.txt", text)
    assert result.dropped == {"longer than 20000 characters": 1, "shorter than 20 characters": 1}
    assert result.summary() == (
        "kept 6 sections, dropped 2 (1 longer than 20000 characters, 1 shorter than 20 characters)"
    )
    # The CLI's own record keeps naming its options.
    stats = (tmp_path / "songs_txt" / "prepared" / "stats.json").read_text()
    assert "--max-chars" in stats and "--min-chars" in stats


def test_a_summary_stays_short_and_keeps_the_files_text_out(tmp_path):
    good = ["red sky at morning", "salt on the rigging", "lanterns on the quay", "the tide goes out"]
    rows = [{"text": f"{line}, and the gulls cry over the water", "part": "chorus"} for line in good]
    rows += [{"text": f"row {n}: words of a skit", "part": f"**Skit {n}** {'x' * 200}"} for n in range(300)]
    result = prepared(tmp_path, "rows.json", json.dumps(rows))
    ((reason, n),) = result.dropped.items()
    assert n == 300 and reason.startswith("part is not one of: intro, verse")
    summary = result.summary()
    assert summary.startswith("kept 4 sections, dropped 300 (300 part is not one of:")
    assert len(summary) < 300 and "Skit" not in summary


# --- item 12: sizes --------------------------------------------------------------------------------


def limit_message(size: int, limit: int) -> str:
    with pytest.raises(UploadError) as caught:
        check_upload("a.txt", size, limit)
    return str(caught.value)


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [
        (2_000_001, 2_000_000, "2,000,001 bytes is over this bot's upload limit of 2,000,000 bytes"),
        (25_000, 20_000, "25 kB is over this bot's upload limit of 20 kB"),
        (3_500_000, 2_000_000, "3.5 MB is over this bot's upload limit of 2 MB"),
        (1_500, 999, "1.5 kB is over this bot's upload limit of 999 bytes"),
    ],
)
def test_limit_messages_read_right(size, limit, expected):
    assert limit_message(size, limit) == f"`a.txt`: {expected}"


def test_a_size_over_the_limit_never_reads_as_the_limit():
    for limit in (999, 1_000, 20_000, 100_000, 999_999, 1_000_000, 2_000_000, 8_000_000, 25_000_000):
        for size in {
            limit + 1,
            limit + 49,
            limit + 50,
            limit + 499,
            limit + 500,
            limit + 5_000,
            limit * 21 // 20,
        }:
            over, allowed = re.findall(r"\d[\d,.]* (?:bytes|kB|MB)", limit_message(size, limit))
            assert over != allowed, (size, limit)


# --- items 15b/15c: file names shown safely, messages within Discord's limit -----------------------


def test_file_names_are_shown_safely_and_bounded():
    name = "cover`**bold**" + RLO + "txt.pdf"
    message = str(_check(name))
    assert RLO not in message and message.count("`") == 2  # one code span, nothing after it broken out
    assert message.startswith("`cover'**bold**txt.pdf`: not a lyrics file")
    long = str(_check("x" * 1900 + ".pdf"))
    assert len(long) < 400 and "….pdf`" in long
    hidden = str(_check("\u200b\u2066\n.pdf"))  # nothing visible but the suffix
    assert not any(unicodedata.category(c) in {"Cc", "Cf"} for c in hidden)


def test_file_names_lose_what_seeds_and_messages_lose():
    # The one filter (model.seedline.strip_invisible), dropping rather than spacing: the grapheme joiner
    # (a mark that shows nothing), a tag letter, a line separator and private use leave no trace.
    assert shown("ly\u034fr\U000e0041ics\u2028\ue000.txt") == "`lyrics.txt`"
    assert shown("\u034f\U000e0041") == "your file"


def _check(name: str) -> UploadError:
    with pytest.raises(UploadError) as caught:
        check_upload(name, 10, 100)
    return caught.value


# --- end to end, as members see it ----------------------------------------------------------------


async def test_members_are_told_in_their_files_terms(simcord_env, server, tmp_path):
    guild, channel, *_ = server
    dana = manager(simcord_env, guild)
    models_dir = str(tmp_path / "models")
    for file, expected in [
        (("plain.txt", b"just one line"), "nothing in it is usable (1 shorter than 20 characters)"),
        (("rows.json", b'[{"lyrics": "la la la"}]'), "no 'text' field in its rows"),
        (("deep.json", b"[" * 100_000 + b"]" * 100_000), f"nested deeper than {MAX_DEPTH} levels"),
        (("big.txt", b"x" * 2_000_001), "2,000,001 bytes is over this bot's upload limit of 2,000,000 bytes"),
    ]:
        r = await dana.slash(channel, "model train", name="songs", file=file)
        text = r.response.content
        assert text.startswith(f"⚠️ `{file[0]}`: ") and expected in text, text
        assert models_dir not in text and "--" not in text and "Something went wrong" not in text
    simcord.assert_error(simcord_env)
    assert await models_of(simcord_env, guild) == []


async def test_a_long_strange_file_name_is_answered_within_the_limit(simcord_env, server):
    guild, channel, *_ = server
    dana = manager(simcord_env, guild)
    name = "a`b" + RLO + "x" * 1900 + ".pdf"
    r = await dana.slash(channel, "model train", name="songs", file=(name, b"%PDF-1.4"))
    text = r.response.content
    assert text.startswith("⚠️ `a'bxxx") and "….pdf`: not a lyrics file" in text and RLO not in text
    simcord.assert_error(simcord_env)

    # Accepted: the message that follows the job shows the name the same way.
    simcord_env.bot.config.adapter_steps = 10_000
    good = "l`yrics" + RLO + "y" * 1900 + ".txt"
    r = await emit(simcord_env, dana, channel, "model train", name="songs", file=upload(name=good))
    await until_training(simcord_env, guild)
    sent = [q.json["content"] for q in simcord_env.http_requests if _content(q.json).startswith("📥")]
    assert sent and all(len(c) <= DISCORD_LIMIT for c in sent)
    assert sent[-1].startswith("📥 **songs** from `l'yricsyyy") and "….txt`: kept 24 sections" in sent[-1]
    assert (await dana.slash(channel, "model cancel")).response.content.startswith("Cancelled training")


def _content(body: object) -> str:
    return str(body.get("content") or "") if isinstance(body, dict) else ""


# --- item 13: model names only for those who may use /model ---------------------------------------


async def test_names_are_offered_only_to_members_who_may_use_model(simcord_env, server):
    guild, channel, alice, _ = server
    dana = manager(simcord_env, guild)
    await ModelRegistry(simcord_env.bot.db).add(guild.id, "Secret Plans", "base", "/nowhere", "x.txt", {})
    # A server that shows /model to everyone still keeps its model names from non-managers.
    model = next(c for c in await simcord_env.bot.tree.fetch_commands() if c.name == "model")
    guild.set_command_permissions(model, {alice: True})
    for command in ("model delete", "model use"):
        assert await alice.autocomplete(channel, command, "name", "") == []
        offered = await dana.autocomplete(channel, command, "name", "sec")
        assert [c["value"] for c in offered] == ["Secret Plans"]
