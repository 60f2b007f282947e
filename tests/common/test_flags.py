"""Flags derived from the stage configs: known command lines give known configs, and no field is forgotten."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import shlex
from pathlib import Path

import pytest

import linernotes.cli
from linernotes.bot.config import BotConfig
from linernotes.bot.web.config import WebConfig
from linernotes.cli import (
    adapter_cmd,
    bot_cmd,
    db_cmd,
    demo,
    eval_cmd,
    export_cmd,
    generate_cmd,
    models_cmd,
    playground,
    prepare_cmd,
    train_cmd,
    web_cmd,
)
from linernotes.cli.main import build_parser
from linernotes.common.flags import add_flags, flag, from_args
from linernotes.data.config import DataConfig
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.training.config import TrainConfig
from linernotes.training.eval.config import EvalConfig


def parse(argv: str) -> argparse.Namespace:
    return build_parser().parse_args(shlex.split(argv))


def subparsers(parser: argparse.ArgumentParser, path: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every parser under ``parser`` by its command path ("" itself, "models add"), nested ones too."""
    found = {path: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= subparsers(sub, f"{path} {name}".strip())
    return found


def subparser(command: str) -> argparse.ArgumentParser:
    return subparsers(build_parser())[command]


NONE: frozenset[str] = frozenset()
# Where each command's flags come from: (dataclass, fields left out on purpose), for every command that runs.
FLAG_SOURCES: dict[str, list[tuple[type, frozenset[str]]]] = {
    "demo": [(demo.DemoArgs, NONE)],
    "playground": [(playground.PlaygroundArgs, NONE)],
    "prepare": [(DataConfig, NONE)],
    "train": [(TrainConfig, train_cmd.NOT_FLAGS)],
    "sweep": [(TrainConfig, train_cmd.NOT_FLAGS | {"resume", "out"}), (train_cmd.SweepArgs, NONE)],
    "export": [(export_cmd.ExportArgs, NONE)],
    "generate": [(generate_cmd.GenerateArgs, NONE), (Sampling, NONE), (GenerateConfig, frozenset({"limit"}))],
    "eval": [(EvalConfig, NONE), (eval_cmd.EvalArgs, NONE)],
    "bot": [(bot_cmd.SettingsFile, NONE), (BotConfig, NONE)],
    "warm": [(bot_cmd.WarmArgs, NONE), (bot_cmd.SettingsFile, NONE), (BotConfig, NONE)],
    "stats": [(bot_cmd.StatsArgs, NONE)],
    "feedback export": [(bot_cmd.FeedbackExportArgs, NONE)],
    "adapter": [(adapter_cmd.AdapterArgs, NONE)],
    "models add": [(models_cmd.ModelsAddArgs, NONE)],
    "db copy": [(db_cmd.CopyArgs, NONE)],
    "models list": [(models_cmd.ModelsListArgs, NONE)],
    "web": [(web_cmd.WebArgs, NONE), (WebConfig, NONE)],
}
# argparse's own: -h everywhere, and the top level's -v (how much to log, not a setting of any command).
PLUMBING = {"": {"help", "verbose"}}


def test_readme_train_command_gives_its_config() -> None:
    args = parse(
        "train --data data/prepared --base gpt2-medium --out runs/medium --epochs 3 --batch-size 8 "
        "--grad-accum 4 --lr 5e-5 --block-size 512 --sample-every 200"
    )
    expected = TrainConfig(
        data="data/prepared",
        out="runs/medium",
        base="gpt2-medium",
        epochs=3.0,
        batch_size=8,
        grad_accum=4,
        lr=5e-5,
        block_size=512,
        sample_every=200,
    )
    assert train_cmd.config_from_args(args) == expected


def test_every_kind_of_train_flag() -> None:
    args = parse(
        "train --data d --out o --from-scratch tiny --extra-data f1 --extra-data f2 --steps 7 "
        "--precision fp32 --gradient-checkpointing --eval-batches 3 --max-minutes 1.5 --tag-dropout 0.15 "
        "--lora --lora-r 4 --lora-alpha 8 --resume --no-progress"
    )
    config = train_cmd.config_from_args(args)
    assert config == TrainConfig(
        data="d",
        out="o",
        from_scratch="tiny",
        extra_data=["f1", "f2"],
        steps=7,
        precision="fp32",
        gradient_checkpointing=True,
        eval_batches=3,
        max_minutes=1.5,
        tag_dropout=0.15,
        lora=True,
        lora_r=4,
        lora_alpha=8,
        resume=True,
        progress=False,
    )
    # Nothing given: the dataclass defaults, including the mutable list (a fresh one).
    plain = train_cmd.config_from_args(parse("train --data d --out o"))
    assert plain == TrainConfig(data="d", out="o") and plain.progress is True and plain.extra_data == []


def test_sweep_takes_the_train_flags_but_not_resume() -> None:
    args = parse("sweep --data d --sizes 50,100 --out s --lr 1e-3 --from-scratch small")
    assert train_cmd.config_from_args(args, max_examples=50) == TrainConfig(
        data="d", out="s", lr=1e-3, from_scratch="small", max_examples=50
    )
    with pytest.raises(SystemExit):
        parse("sweep --data d --sizes 50 --out s --resume")


def test_flag_choices_still_refuse_unknown_values() -> None:
    for argv in (
        "train --data d --out o --from-scratch huge",
        "train --data d --out o --precision fp8",
        "prepare x --out o --dedupe fuzzy",
        "eval ck --data d --out o --precision fp8",
    ):
        with pytest.raises(SystemExit):
            parse(argv)


def test_prepare_command_gives_its_config() -> None:
    args = parse(
        "prepare reviews.csv lyrics/ --out prepared --kind review --format table "
        "--map text=review,genre=style --map score=mark --min-helpful 2 --artist Somebody --chunk-lines 8 "
        "--titles --min-chars 5 --max-chars 900 --min-tokens 3 --max-tokens 400 --lowercase --dedupe exact "
        "--val-fraction 0.1 --test-fraction 0.2 --tokenizer local-tok"
    )
    assert prepare_cmd.config_from_args(args) == DataConfig(
        sources=["reviews.csv", "lyrics/"],
        out="prepared",
        kind="review",
        format="table",
        mapping={"text": "review", "genre": "style", "score": "mark"},
        min_helpful=2,
        artist="Somebody",
        chunk_lines=8,
        titles=True,
        min_chars=5,
        max_chars=900,
        min_tokens=3,
        max_tokens=400,
        lowercase=True,
        dedupe="exact",
        val_fraction=0.1,
        test_fraction=0.2,
        tokenizer="local-tok",
    )
    assert prepare_cmd.config_from_args(parse("prepare a --out o")) == DataConfig(sources=["a"], out="o")


def test_eval_command_gives_its_config() -> None:
    args = parse(
        "eval ck --data d --out r --samples 3 --guidance 1 2.5 --max-values 5 --max-parts 3 "
        "--max-new-tokens 40 --tag-id-examples 12 --seed 9 --precision int8 --device cpu --sweep sw"
    )
    config = eval_cmd._config(args, args.checkpoint, "r")
    assert config == EvalConfig(
        checkpoint="ck",
        data="d",
        out="r",
        samples=3,
        guidance=(1.0, 2.5),
        max_values=5,
        max_parts=3,
        max_new_tokens=40,
        tag_id_examples=12,
        seed=9,
        precision="int8",
        device="cpu",
        sweep="sw",
    )
    plain = parse("eval --compare a b --data d --out r")
    assert eval_cmd._config(plain, "a", "r/A") == EvalConfig(checkpoint="a", data="d", out="r/A")


def test_every_command_has_its_flag_sources() -> None:
    parsers = subparsers(build_parser())
    runnable = {
        path
        for path, parser in parsers.items()
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    }
    assert runnable == set(FLAG_SOURCES)


@pytest.mark.parametrize("command", sorted(subparsers(build_parser())))
def test_every_flag_is_a_dataclass_field_and_every_field_a_flag(command: str) -> None:
    """The whole ``linernotes`` parser: each command's options are exactly its dataclasses' fields, less
    those excluded on purpose (another source of the command may still give a field of that name)."""
    parser = subparser(command)
    dests = {a.dest for a in parser._actions if not isinstance(a, argparse._SubParsersAction)}
    fields = {
        f.name
        for cls, excluded in FLAG_SOURCES.get(command, [])
        for f in dataclasses.fields(cls)
        if f.name not in excluded
    }
    assert dests - PLUMBING.get(command, {"help"}) == fields


def test_no_hand_written_flags_in_the_cli() -> None:
    """Flags are added by ``add_flags`` from dataclass fields; only the allowed ``add_argument`` calls remain."""
    allowed = {("main.py", "-v")}  # global log verbosity: argparse plumbing, no command's setting
    calls = set()
    for source in Path(linernotes.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                first = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                calls.add((source.name, first))
    assert calls == allowed


def test_one_of_fields_form_a_required_exclusive_choice() -> None:
    @dataclasses.dataclass(kw_only=True)
    class Job:
        data: str | None = dataclasses.field(default=None, metadata=flag("prepared", one_of="source"))
        upload: str | None = dataclasses.field(default=None, metadata=flag("raw", one_of="source"))
        work: str = dataclasses.field(metadata=flag("job directory"))

    parser = argparse.ArgumentParser()
    add_flags(parser, Job)
    assert from_args(Job, parser.parse_args(["--upload", "u", "--work", "w"])) == Job(upload="u", work="w")
    assert from_args(Job, parser.parse_args(["--work", "w", "--data", "d"])) == Job(data="d", work="w")
    for argv in (["--work", "w"], ["--data", "d", "--upload", "u", "--work", "w"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "(--data DATA | --upload UPLOAD)" in parser.format_usage()


def test_one_of_needs_a_default_and_a_plain_flag() -> None:
    @dataclasses.dataclass
    class Required:
        data: str = dataclasses.field(metadata=flag("prepared", one_of="source"))

    @dataclasses.dataclass
    class Layered:
        data: str | None = dataclasses.field(default=None, metadata=flag("prepared", one_of="source"))

    with pytest.raises(TypeError, match="needs a default"):
        add_flags(argparse.ArgumentParser(), Required)
    with pytest.raises(TypeError, match="plain flags"):
        add_flags(argparse.ArgumentParser(), Layered, layered=True)


def test_a_field_without_flag_metadata_is_refused() -> None:
    @dataclasses.dataclass
    class Settings:
        size: int = dataclasses.field(default=3, metadata=flag("how big"))
        forgotten: int = 0

    with pytest.raises(TypeError, match=r"Settings\.forgotten"):
        add_flags(argparse.ArgumentParser(), Settings)
    parser = argparse.ArgumentParser()
    add_flags(parser, Settings, exclude={"forgotten"})
    assert from_args(Settings, parser.parse_args(["--size", "5"])) == Settings(size=5)
    assert "how big; default 3" in parser.format_help()


def test_generate_command_gives_its_three_configs() -> None:
    args = parse(
        "generate ck review --genre Metal --score 7.5 -n 3 --json --temperature 0.7 --top-k 20 --top-p 0.9 "
        "--repetition-penalty 1.3 --max-new-tokens 64 --seed 5 --guidance 2 --precision fp32 --device cpu "
        "--backend openai --backend-url http://box:8000/v1 --max-batch 8 --min-chars 40"
    )
    asked = from_args(generate_cmd.GenerateArgs, args)
    assert asked == generate_cmd.GenerateArgs(
        checkpoint="ck", kind="review", genre="Metal", score=7.5, n=3, json=True
    )
    assert from_args(Sampling, args) == Sampling(
        temperature=0.7, top_k=20, top_p=0.9, repetition_penalty=1.3, max_new_tokens=64, seed=5, guidance=2.0
    )
    assert from_args(GenerateConfig, args) == GenerateConfig(
        precision="fp32",
        device="cpu",
        backend="openai",
        backend_url="http://box:8000/v1",
        max_batch=8,
        min_chars=40,
    )


def test_generate_without_guidance_leaves_it_to_the_card() -> None:
    """An unset --guidance parses as None, so the card's scale applies; the others keep their defaults."""
    args = parse("generate ck lyrics --part chorus")
    assert args.guidance is None
    assert from_args(Sampling, args, guidance=3.0) == Sampling(guidance=3.0)
    assert from_args(GenerateConfig, args) == GenerateConfig()
    assert "default: the checkpoint card's" in " ".join(subparser("generate").format_help().split())
    with pytest.raises(SystemExit):
        parse("generate ck lyrics --precision fp8")
