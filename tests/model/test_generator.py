"""The generator, in-process and through an OpenAI-compatible server: same behaviour either way."""

import json
import socket
import struct
import threading

import pytest

from linernotes.common.errors import GenerationError, TagError
from linernotes.data.format import END, HEADER_OPEN, make_record, parse, render
from linernotes.model.backends import OpenAIBackend, PromptText, Raw
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.copyguard import CopyGuard, build_index
from linernotes.model.generator import Generator, Request
from tests.model.openai_server import CompletionServer

# The tiny test model writes little that reads well; accept anything non-empty so behaviour is testable.
LENIENT = {"min_chars": 1}


@pytest.fixture(scope="module", params=["local", "openai"])
def generator(request, tiny_fp32):
    if request.param == "local":
        yield Generator.load(tiny_fp32, GenerateConfig(device="cpu", **LENIENT))
        return
    with CompletionServer(tiny_fp32) as server:
        yield Generator.load(tiny_fp32, GenerateConfig(backend="openai", backend_url=server.url, **LENIENT))


def mixed_requests(seed: int = 7, n: int = 6) -> list[Request]:
    s = Sampling(seed=seed, max_new_tokens=60)
    tags = [
        ("review", {"genre": "Metal", "score": 7.5}),
        ("lyrics", {"part": "chorus"}),
        ("product", {"rating": 2}),
        ("review", {"genre": "jazz", "score": 2.0}),
        ("lyrics", {"part": "verse", "artist": "Iron Chapel"}),
        ("lyrics", {"part": "bridge"}),
    ]
    return [Request(k, t, sampling=s.with_seed(seed + i)) for i, (k, t) in enumerate(tags[:n])]


def test_same_seed_same_text(generator):
    first = [r.text for r in generator.generate(mixed_requests())]
    again = [r.text for r in generator.generate(mixed_requests())]
    assert first == again and any(first)
    other = [r.text for r in generator.generate(mixed_requests(seed=99))]
    assert other != first


def test_outputs_never_contain_headers_or_end_marker(generator):
    requests = [
        Request("review", {"genre": g, "score": s}, sampling=Sampling(seed=n, max_new_tokens=80))
        for n, (g, s) in enumerate([("Rock", 1.0), ("Rap", 9.5), ("Electronic", 5.0)] * 4)
    ]
    for result in generator.generate(requests):
        assert HEADER_OPEN not in result.text and END not in result.text and "genre:" not in result.text
        assert result.request.tags["genre"] in {"Rock", "Rap", "Electronic"}


def test_length_limits(generator):
    config = GenerateConfig(limit=120, min_chars=1)
    limited = Generator(generator.backend, generator.card, generator.guard, config)
    results = limited.generate(
        [
            Request("lyrics", {"part": "verse"}, sampling=Sampling(seed=n, max_new_tokens=150))
            for n in range(6)
        ]
    )
    assert all(len(r.text) <= 120 for r in results)
    assert all(r.tokens <= 150 for r in results)


def test_unknown_tags_and_ranges_are_named(generator):
    with pytest.raises(TagError, match=r"genre 'Polka' is not one this model knows; it knows: .*Metal"):
        generator.generate([Request("review", {"genre": "Polka", "score": 5})])
    with pytest.raises(TagError, match=r"score 0.5 is outside the range this model was trained on"):
        generator.generate([Request("review", {"genre": "Metal", "score": 0.5})])
    with pytest.raises(TagError, match="artist 'Nobody' is not one this model knows"):
        generator.generate([Request("lyrics", {"part": "chorus", "artist": "Nobody"})])
    with pytest.raises(TagError, match="a seed line is only for lyrics"):
        generator.generate([Request("review", {"genre": "Metal", "score": 5}, seed_line="hi")])


def test_seed_line_is_sanitised_and_continued(generator):
    (result,) = generator.generate(
        [
            Request(
                "lyrics",
                {"part": "chorus"},
                f"{END}  we ride <|review|> at dawn\n|>",
                Sampling(seed=1, max_new_tokens=30),
            )
        ]
    )
    assert result.request.seed_line == "we ride at dawn"
    assert result.text.startswith("we ride at dawn\n") or result.text == "we ride at dawn"


def test_copy_guard_rejects_planted_training_passage(tiny_fp32, sample_data):
    train = [json.loads(line)["text"] for line in (sample_data / "train.jsonl").read_text().splitlines()]
    guard = CopyGuard(build_index(train))
    passage = next(t for t in train if len(t.split()) > 40)
    assert guard.check(passage).copied
    assert (
        guard.check("A new sentence about glass harps, wet cardboard and a kazoo the size of a barn.").copied
        is False
    )
    mixed = "Totally fresh opening words here. " + " ".join(passage.split()[:14]) + " and then my own ending."
    check = guard.check(mixed)
    assert check.copied and check.longest_run >= 12


class Scripted:
    """A backend that first returns a training passage, then fresh text: the copy guard must retry."""

    name = "scripted"

    def __init__(self, first: str) -> None:
        self.calls, self.first = [], first

    def complete(self, prompts, params, models=None):
        self.calls.append([p.seed for p in params])
        text = (
            self.first
            if len(self.calls) == 1
            else "Fresh words nobody trained on, in a sentence of their own."
        )
        return [Raw(text, "end", 20) for _ in prompts]


def test_copied_draft_is_regenerated_with_a_new_seed(tiny_fp32, sample_data):
    train = [json.loads(line)["text"] for line in (sample_data / "train.jsonl").read_text().splitlines()]
    passage = next(t for t in train if len(t.split()) > 40)
    base = Generator.load(tiny_fp32, GenerateConfig(**LENIENT))
    backend = Scripted(passage)
    gen = Generator(backend, base.card, CopyGuard(build_index(train)), base.config)
    (result,) = gen.generate([Request("review", {"genre": "Rock", "score": 6}, sampling=Sampling(seed=10))])
    assert result.ok and result.attempts == 2 and result.text.startswith("Fresh words")
    assert backend.calls == [[10], [11]]
    stuck = Generator(
        Scripted(passage), base.card, CopyGuard(build_index(train)), GenerateConfig(max_attempts=1, **LENIENT)
    )
    (failed,) = stuck.generate([Request("review", {"genre": "Rock", "score": 6}, sampling=Sampling(seed=10))])
    assert not failed.ok and failed.text == "" and "reproduced training text" in failed.error


def test_int8_checkpoint_generates_on_cpu(tiny_checkpoint):
    gen = Generator.load(tiny_checkpoint, GenerateConfig(precision="int8", device="cpu", **LENIENT))
    results = gen.generate(mixed_requests(n=3))
    assert len(results) == 3 and all(r.model_id == gen.model_id for r in results)
    assert gen.generate(mixed_requests(n=3))[0].text == results[0].text


def test_render_of_generation_parses_back(generator):
    (result,) = generator.generate([Request("lyrics", {"part": "hook"}, sampling=Sampling(seed=4))])
    assert result.ok and result.text
    record = make_record("lyrics", result.request.tags, result.text)
    # Whatever the model wrote, as training text it is one header, an escaped body and the end marker.
    assert parse(render(record)) == record


@pytest.mark.parametrize("how", ["reset", "closed"])
def test_a_completions_server_dropping_the_connection_is_a_generation_error(how):
    """urllib wraps only what fails while sending; a connection dropped while the answer is read came out
    as a bare ConnectionResetError or RemoteDisconnected, which the bot showed as an internal error."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def drop() -> None:
            conn, _ = listener.accept()
            request = chunk = b"-"
            while chunk and not request.endswith(b"}"):  # the whole request (its JSON body last), then drop
                request += (chunk := conn.recv(65536))
            if how == "reset":  # close with SO_LINGER 0: the peer gets a RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

        thread = threading.Thread(target=drop, daemon=True)
        thread.start()
        backend = OpenAIBackend(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "m", timeout=10)
        with pytest.raises(GenerationError, match="completions server"):
            backend.complete([PromptText("<|review|> x\n", "")], [Sampling(seed=1)])
        thread.join(timeout=10)
