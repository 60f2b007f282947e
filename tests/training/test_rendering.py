"""A model's header rendering travels with it: the run trains on it, the card records it, generation
and adapters prompt with it; a card written before renderings existed still loads, as control codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from linernotes.common.errors import CheckpointError, ConfigError
from linernotes.data.format import HEADER_OPEN
from linernotes.model.card import read_card
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.generator import Generator, Request
from linernotes.training import setup
from linernotes.training.export import export
from linernotes.training.loop import train
from tests.conftest import tiny_config
from tests.model.openai_server import CompletionServer

SHORT = {"steps": 6, "eval_every": 6, "save_every": 6}


def served_prompt(checkpoint: Path, request: Request) -> tuple[str, str]:
    """The prompt the generator sends for ``request`` (seen by a completions server), and the text."""
    with CompletionServer(checkpoint) as server:
        gen = Generator.load(
            checkpoint, GenerateConfig(backend="openai", backend_url=server.url, min_chars=1)
        )
        (result,) = gen.generate([request])
    assert result.ok and HEADER_OPEN not in result.text
    return server.requests[0]["prompt"], result.text


def review(score: float) -> Request:
    return Request("review", {"genre": "Rock", "score": score}, sampling=Sampling(seed=3, max_new_tokens=20))


@pytest.fixture(scope="module")
def words_checkpoint(sample_data, tmp_path_factory) -> Path:
    """A tiny run trained on the ``words`` rendering, exported."""
    work = tmp_path_factory.mktemp("words")
    train(tiny_config(sample_data, work / "run", rendering="words", **SHORT))
    export(work / "run", work / "ck", "fp32")
    return work / "ck"


def test_the_run_records_its_rendering_and_the_card_carries_it(words_checkpoint):
    card = read_card(words_checkpoint)
    assert card.rendering == "words" and card.training["rendering"] == "words"


def test_generation_prompts_in_the_cards_rendering(words_checkpoint):
    prompt, _ = served_prompt(words_checkpoint, review(2.0))
    assert prompt == "<|review|> A review of a Rock album, scored 2.0 out of 10 (terrible).\n"


def test_a_card_from_before_renderings_loads_and_prompts_with_control_codes(sample_data, tmp_path):
    # What an older linernotes wrote: a run on control codes, and a card with no "rendering" field.
    train(tiny_config(sample_data, tmp_path / "run", rendering="tags", **SHORT))
    export(tmp_path / "run", tmp_path / "ck", "fp32")
    raw = json.loads((tmp_path / "ck" / "card.json").read_text())
    raw.pop("rendering")
    raw["training"].pop("rendering")
    (tmp_path / "ck" / "card.json").write_text(json.dumps(raw))
    assert read_card(tmp_path / "ck").rendering == "tags"
    prompt, text = served_prompt(tmp_path / "ck", review(9.0))
    assert prompt == "<|review|> genre: Rock | score: 9.0\n" and text


def test_an_unknown_rendering_in_a_card_is_named(words_checkpoint, tmp_path):
    shutil.copytree(words_checkpoint, tmp_path / "ck")
    raw = json.loads((tmp_path / "ck" / "card.json").read_text())
    (tmp_path / "ck" / "card.json").write_text(json.dumps({**raw, "rendering": "haiku"}))
    with pytest.raises(CheckpointError, match="header rendering 'haiku' is not one this linernotes knows"):
        read_card(tmp_path / "ck")


def test_training_on_a_checkpoint_keeps_its_rendering_unless_told(words_checkpoint, sample_data, tmp_path):
    on_checkpoint = tiny_config(sample_data, tmp_path / "run", from_scratch=None, base=str(words_checkpoint))
    assert setup.rendering(on_checkpoint) == "words"
    told = tiny_config(
        sample_data, tmp_path / "run", from_scratch=None, base=str(words_checkpoint), rendering="tags"
    )
    assert setup.rendering(told) == "tags"


def test_a_model_from_scratch_gets_control_codes_and_a_pretrained_base_the_default(sample_data, tmp_path):
    from linernotes.training.config import DEFAULT_RENDERING

    assert setup.rendering(tiny_config(sample_data, tmp_path / "run")) == "tags"
    pretrained = tiny_config(sample_data, tmp_path / "run", from_scratch=None, base="gpt2")
    assert setup.rendering(pretrained) == DEFAULT_RENDERING == "words"


def test_an_unknown_rendering_flag_is_refused(sample_data, tmp_path):
    with pytest.raises(ConfigError, match="--rendering must be one of tags, prose, words"):
        tiny_config(sample_data, tmp_path / "run", rendering="haiku")
