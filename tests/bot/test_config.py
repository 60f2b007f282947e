"""Bot settings: defaults < TOML < environment < flags; the token is never a setting."""

from __future__ import annotations

import discord
import pytest

from linernotes.bot.config import load_config
from linernotes.cli.main import main
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
