"""Bot settings: defaults < TOML < environment < flags; the token is never a setting."""

from __future__ import annotations

import dataclasses
import shlex

import discord
import pytest

from linernotes.bot.config import ADMIN_PERMISSIONS, BotConfig, load_config
from linernotes.cli import bot_cmd
from linernotes.cli.main import build_parser, main
from linernotes.common.errors import ConfigError
from tests.conftest import REPO


def test_layering(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text('[bot]\ncheckpoint = "ck"\nper_key = 4\ncooldown = 9\nreactions = ["✅", "❌"]\n')
    config = load_config(toml, {"LINERNOTES_PER_KEY": "6", "DISCORD_TOKEN": "secret"}, cooldown=1.5)
    assert (config.checkpoint, config.per_key, config.cooldown, config.reactions) == (
        "ck",
        6,
        1.5,
        ["✅", "❌"],
    )
    assert "secret" not in repr(config.to_dict())


def test_example_file_is_valid():
    config = load_config(REPO / "bot.example.toml", {})
    assert config.per_key == 3 and config.sync == "auto"


def test_bad_settings_are_named(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text("[bot]\ncheckpoint = 'x'\nper_kee = 3\n")
    with pytest.raises(ConfigError, match="unknown setting 'per_kee'"):
        load_config(toml, {})
    with pytest.raises(ConfigError, match="per_key must be positive"):
        load_config(None, {"LINERNOTES_PER_KEY": "0"}, checkpoint="x")
    with pytest.raises(ConfigError, match="bot setting cooldown: 'soon' is not a float"):
        load_config(None, {"LINERNOTES_COOLDOWN": "soon"}, checkpoint="x")
    with pytest.raises(ConfigError, match="no checkpoint given"):
        load_config(None, {})


def test_settings_are_refused_by_type_and_choice(tmp_path):
    toml = tmp_path / "bot.toml"
    toml.write_text("[bot]\ncheckpoint = 'x'\nprecision = 'fp8'\n")
    with pytest.raises(ConfigError, match=r"bot\.toml: setting precision: 'fp8' is not one of auto, int8"):
        load_config(toml, {})
    with pytest.raises(ConfigError, match="bot setting server_models: 'nope' is not true or false"):
        load_config(None, {"LINERNOTES_SERVER_MODELS": "nope"}, checkpoint="x")
    with pytest.raises(ConfigError, match="bot setting admin_permission: 'manage_gild' is not one of"):
        load_config(None, {"LINERNOTES_ADMIN_PERMISSION": "manage_gild"}, checkpoint="x")
    # A guild id written as a TOML number is still the text setting it is.
    toml.write_text("[bot]\ncheckpoint = 'x'\nsync = 123456789\n")
    assert load_config(toml, {}).sync == "123456789"


def test_admin_permissions_are_discords():
    assert set(ADMIN_PERMISSIONS) <= discord.Permissions.VALID_FLAGS.keys()


def command_config(argv: str):
    return bot_cmd._config(build_parser().parse_args(shlex.split(argv)))


def test_flags_beat_the_environment_which_beats_the_file(tmp_path, monkeypatch):
    toml = tmp_path / "bot.toml"
    toml.write_text('[bot]\ncheckpoint = "file-ck"\nper_key = 4\ncooldown = 9\nhot_keys = 2\nsync = "off"\n')
    monkeypatch.setenv("LINERNOTES_PER_KEY", "6")
    monkeypatch.setenv("LINERNOTES_COOLDOWN", "7")
    config = command_config(
        f"bot --config {toml} --db d.sqlite3 --per-key 5 --no-another-button --reactions ✅ --reactions ❌ "
        "--precision fp32 --operators 42"
    )
    # Flags given win; unset ones leave the environment's (cooldown) and the file's (hot_keys, sync).
    assert (config.checkpoint, config.database, config.per_key, config.cooldown) == (
        "file-ck",
        "d.sqlite3",
        5,
        7.0,
    )
    assert (config.hot_keys, config.sync, config.another_button) == (2, "off", False)
    assert (config.reactions, config.precision, config.operators) == (["✅", "❌"], "fp32", ["42"])
    warm = command_config(f"warm ck --config {toml} --limit 3 --sync 1234")
    assert (warm.checkpoint, warm.per_key, warm.sync) == ("ck", 6, "1234")
    with pytest.raises(SystemExit):
        command_config("bot ck --precision fp8")


def test_the_token_is_no_setting_and_no_flag(monkeypatch):
    assert not [f.name for f in dataclasses.fields(BotConfig) if "token" in f.name]
    monkeypatch.setenv("LINERNOTES_DISCORD_TOKEN", "secret")
    monkeypatch.setenv("LINERNOTES_TOKEN", "secret")
    assert "secret" not in repr(command_config("bot ck").to_dict())
    for command in ("bot", "warm"):
        with pytest.raises(SystemExit):
            command_config(f"{command} ck --token secret")


def test_bot_without_token_says_how_to_set_it(tiny_fp32, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bot", str(tiny_fp32), "--db", str(tmp_path / "b.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN is not set" in err and ".env" in err


def test_token_never_appears_in_output(tiny_fp32, tmp_path, capsys, monkeypatch):
    """With no Discord reachable the bot stops with one line and no token in it."""
    token = "MTIzNDU2Nzg5.fake.token-never-print-me"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    # Discord's API at a closed port on this machine: the test never reaches the real one.
    monkeypatch.setattr(discord.http.Route, "BASE", "http://127.0.0.1:9/api/v10")
    assert main(["bot", str(tiny_fp32), "--db", str(tmp_path / "b.sqlite3"), "--sync", "off"]) == 2
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "could not reach Discord" in out
    assert token not in out and "never-print-me" not in out


def test_one_cluster_of_shards_from_flags_or_environment():
    from linernotes.bot.app import LinernotesBot

    args = build_parser().parse_args(
        ["bot", "ck", "--shard-ids", "0,1", "--shard-count", "4", "--no-trainer"]
    )
    config = bot_cmd._config(args)
    bot = LinernotesBot(config)
    assert (bot.shard_ids, bot.shard_count, config.trainer) == ([0, 1], 4, False)
    env = load_config(None, {"LINERNOTES_SHARD_IDS": "2,3", "LINERNOTES_SHARD_COUNT": "4"}, checkpoint="ck")
    assert env.shards() == {"shard_ids": [2, 3], "shard_count": 4}
    for bad in ("0,4", "1,1", "one"):
        with pytest.raises(ConfigError, match="shard_ids"):
            BotConfig(checkpoint="ck", shard_ids=bad, shard_count=4)
    with pytest.raises(ConfigError, match="needs shard_count"):
        BotConfig(checkpoint="ck", shard_ids="0")


def test_a_postgresql_store_needs_a_shared_models_dir_and_its_password_is_never_shown():
    url = "postgresql://bot:hunter2@db.internal/linernotes"
    with pytest.raises(ConfigError, match="models_dir"):
        BotConfig(checkpoint="ck", database=url)
    config = BotConfig(checkpoint="ck", database=url, models_dir="/shared/models")
    assert "hunter2" not in repr(config.to_dict()) and "bot:***@db.internal" in config.to_dict()["database"]
    assert BotConfig(checkpoint="ck", database=url, server_models=False).database == url


def test_the_bots_adapter_step_cap_is_the_server_recipes():
    """The bot may not import training (imports point bot -> model -> data), so the cap is written twice."""
    from linernotes.training.pipeline import RECIPES

    (steps,) = [f.default for f in dataclasses.fields(BotConfig) if f.name == "adapter_steps"]
    assert steps == RECIPES["server"]["max_steps"]


def test_the_bot_samples_at_the_cards_guidance_and_contrast_unless_set():
    from linernotes.bot.config import sampling_for
    from linernotes.model.card import Card

    steering = {"guidance_by_kind": {"review": 2.0, "lyrics": 1.5}, "contrast_by_kind": {"review": 1.0}}
    card = Card("m", "b", "fp32", architecture={}, tokenizer={}, tags={}, generation=steering)

    def used(kind: str, **settings) -> tuple[float, float]:
        s = sampling_for(BotConfig(checkpoint="ck", **settings), card, kind)
        return s.guidance, s.contrast

    assert [used(k) for k in ("review", "lyrics", "product")] == [(2.0, 1.0), (1.5, 0.0), (1.0, 0.0)]
    assert used("review", guidance=3.0, contrast=0.5) == (3.0, 0.5)
    # A completions server decodes one prompt per row, so neither partner: plain sampling unless set.
    assert used("review", backend="openai") == (1.0, 0.0)
    assert used("review", backend="openai", guidance=2.0) == (2.0, 0.0)
