"""Layered settings: every value is checked against its field's declared type, and errors say where it came from."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from linernotes.common.errors import ConfigError
from linernotes.common.flags import add_flags, flag
from linernotes.common.settings import coerce, layer, read_toml


@dataclass
class Settings:
    name: str = field(metadata=flag("who", positional=True))
    size: int = field(default=3, metadata=flag("how big"))
    ratio: float = field(default=0.5, metadata=flag("how much"))
    limit: int | None = field(default=None, metadata=flag("at most"))
    loud: bool = field(default=True, metadata=flag("say so"))
    ids: list[str] = field(default_factory=list, metadata=flag("who else"))


@pytest.mark.parametrize(
    ("raw", "hint", "value"),
    [
        ("6", int, 6),
        (4, int, 4),
        ("2.5", float, 2.5),
        (2, float, 2.0),
        ("", int | None, None),
        ("7", int | None, 7),
        ("off", bool, False),
        ("Yes", bool, True),
        (True, bool, True),
        ("a, b,", list[str], ["a", "b"]),
        (["x", "y"], list[str], ["x", "y"]),
        ("12", list[int], [12]),
        (123, str, "123"),
    ],
)
def test_values_take_their_field_type(raw, hint, value):
    got = coerce("LINERNOTES_X", raw, hint)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("raw", "hint", "message"),
    [
        ("soon", float, "LINERNOTES_X: 'soon' is not a float"),
        ("4.5", int, "LINERNOTES_X: '4.5' is not an int"),
        (4.5, int, "LINERNOTES_X: 4.5 is not an int"),
        (True, int, "LINERNOTES_X: True is not an int"),
        ("flase", bool, "LINERNOTES_X: 'flase' is not true or false"),
        (["a"], str, "LINERNOTES_X: ['a'] is not text"),
        ("", int, "LINERNOTES_X: '' is not an int"),
        (None, int, "LINERNOTES_X: needs a value"),
    ],
)
def test_wrong_values_are_refused_with_their_source(raw, hint, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        coerce("LINERNOTES_X", raw, hint)


def test_layers_in_order_file_environment_flags(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[app]\nname = "file"\nsize = 4\nloud = false\nids = ["1"]\n')
    values = layer(
        Settings,
        read_toml(path, "app"),
        {"APP_SIZE": "6", "APP_RATIO": "0.25", "OTHER_SIZE": "9", "APP_": "x"},
        prefix="APP_",
        size=None,
        ratio=0.75,
    )
    assert Settings(**values) == Settings(name="file", size=6, ratio=0.75, loud=False, ids=["1"])


def test_unknown_and_mistyped_file_settings_name_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("size = 'big'\n")
    where = f"--config {path}: "
    with pytest.raises(ConfigError, match="setting size: 'big' is not an int"):
        layer(Settings, read_toml(path, "app"), where=where)
    with pytest.raises(ConfigError, match=r"unknown setting 'sise'; settings are: name, size"):
        layer(Settings, {"sise": 3}, where=where)
    path.write_text("size = [")
    with pytest.raises(ConfigError, match=r"--config .*s\.toml: "):
        read_toml(path, "app")
    with pytest.raises(ConfigError, match="file not found"):
        read_toml(tmp_path / "missing.toml", "app")


def test_layered_flags_are_none_until_given():
    parser = argparse.ArgumentParser()
    add_flags(parser, Settings, layered=True)
    unset = vars(parser.parse_args([]))
    assert unset == {"name": None, "size": None, "ratio": None, "limit": None, "loud": None, "ids": None}
    given = vars(parser.parse_args(["me", "--size", "5", "--no-loud", "--ids", "a", "--ids", "b"]))
    assert given == {"name": "me", "size": 5, "ratio": None, "limit": None, "loud": False, "ids": ["a", "b"]}
    assert vars(parser.parse_args(["--loud"]))["loud"] is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--size", "big"])


@dataclass
class Served:
    precision: str = field(default="auto", metadata=flag("weights", choices=("auto", "fp32")))
    emoji: list[str] = field(default_factory=list, metadata=flag("ratings", choices=("up", "down")))
    database: str = field(default="x.sqlite3", metadata=flag("where", name="--db"))


def test_file_and_environment_values_must_be_among_the_flags_choices():
    assert layer(Served, {"precision": "fp32", "emoji": ["up"]}) == {"precision": "fp32", "emoji": ["up"]}
    with pytest.raises(
        ConfigError, match=r"--config b\.toml: setting precision: 'fp8' is not one of auto, fp32"
    ):
        layer(Served, {"precision": "fp8"}, where="--config b.toml: ")
    with pytest.raises(ConfigError, match="APP_EMOJI: 'sideways' is not one of up, down"):
        layer(Served, env={"APP_EMOJI": "up,sideways"}, prefix="APP_")


def test_environment_errors_take_the_label_asked_for():
    with pytest.raises(ConfigError, match="^served setting precision: 'fp8' is not one of"):
        layer(Served, env={"APP_PRECISION": "fp8"}, prefix="APP_", env_label="served setting {name}")
    with pytest.raises(ConfigError, match="^APP_PRECISION: 'fp8'"):
        layer(Served, env={"APP_PRECISION": "fp8"}, prefix="APP_")


def test_layered_flags_show_the_fields_defaults_and_take_renamed_flags():
    parser = argparse.ArgumentParser()
    add_flags(parser.add_argument_group("settings"), Settings, layered=True)
    add_flags(parser.add_argument_group("served"), Served, layered=True)
    text = " ".join(parser.format_help().split())
    # The field's default, not the None an unset layered flag parses as.
    assert "how big; default 3" in text and "default None" not in text
    assert "say so; default on" in text
    assert vars(parser.parse_args(["--db", "y.sqlite3"]))["database"] == "y.sqlite3"
    with pytest.raises(SystemExit):
        parser.parse_args(["--database", "y.sqlite3"])
