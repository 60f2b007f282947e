"""Conditioning that holds: guidance (exact at 1, pointing the right way above it), header suppression,
and the default guidance scale stored by export."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
import torch

from linernotes.common.errors import ConfigError
from linernotes.data.format import HEADER_OPEN, contrast_tags, header
from linernotes.model.backends import LocalBackend, PromptText
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.decode import Prompt, Vocab, decode, next_token_logprobs
from linernotes.model.generator import Generator, Request
from linernotes.model.sampling import guide
from linernotes.training.steering import Steering

# A toy vocabulary whose tokens spell the real tag format, plus pieces of header syntax.
TOKENS = ["<|endoftext|>", "<|lyrics|>", " part:", " chorus", " verse", "\n", " A", " B", " la"]
TOKENS += ["<", "x<", "|", "|>", "\\", "\\|", "<\\|"]
ID = {t: i for i, t in enumerate(TOKENS)}
EOS, A, B = ID["<|endoftext|>"], ID[" A"], ID[" B"]
CHORUS = [ID[t] for t in ("<|lyrics|>", " part:", " chorus", "\n")]
VERSE = [ID[t] for t in ("<|lyrics|>", " part:", " verse", "\n")]
BARE = [ID[t] for t in ("<|lyrics|>", "\n")]
RAW = Sampling(temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=4)


def text(ids: list[int]) -> str:
    return "".join(TOKENS[i] for i in ids)


def stopped_as_said(stop: str, tokens: int, limit: int) -> bool:
    """A text that used its whole token budget says "length"; one that ended sooner, at the end marker, "end"."""
    return stop == ("length" if tokens == limit else "end")


def test_toy_prompts_are_the_real_tag_format():
    assert text(CHORUS) == header("lyrics", {"part": "chorus"})
    assert text(VERSE) == header("lyrics", {"part": "verse"})
    assert text(BARE) == header("lyrics", {})


@pytest.fixture(scope="module")
def planted():
    """A tiny GPT-2 trained (about a second) so that chorus -> A, verse -> B, and the bare header -> A or B."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(TOKENS),
        n_positions=64,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=EOS,
        eos_token_id=EOS,
        **dict.fromkeys(("resid_pdrop", "embd_pdrop", "attn_pdrop"), 0.0),  # learn the same way every run
    )
    model = GPT2LMHeadModel(config)
    seqs = [CHORUS + [A, EOS], VERSE + [B, EOS], BARE + [A, EOS], BARE + [B, EOS]]
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [EOS] * (width - len(s)) for s in seqs])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
    labels = ids.masked_fill(mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), Vocab.build(TOKENS, EOS)


def test_guide_is_the_cfg_mix():
    cond, uncond = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[1.0, 0.0, 1.0]])
    assert torch.equal(guide(cond, uncond, 1.0), cond) and torch.equal(guide(cond, uncond, 0.0), uncond)
    assert torch.equal(guide(cond, uncond, 3.0), torch.tensor([[4.0, 0.0, -5.0]]))
    rows = guide(cond.repeat(2, 1), uncond.repeat(2, 1), torch.tensor([[1.0], [3.0]]))
    assert torch.equal(rows[0], cond[0]) and torch.equal(rows[1], torch.tensor([4.0, 0.0, -5.0]))
    # Where the tags point (token 0 gains, token 2 loses), a larger scale goes further.
    p = {s: torch.softmax(guide(cond, uncond, s)[0], -1) for s in (0.0, 1.0, 3.0)}
    assert p[3.0][0] > p[1.0][0] > p[0.0][0] and p[3.0][2] < p[1.0][2] < p[0.0][2]


def test_guidance_pushes_the_planted_tag_signal(planted):
    model, vocab = planted
    chorus, verse = Prompt(CHORUS, len(CHORUS), BARE), Prompt(VERSE, len(VERSE), BARE)
    lp = {s: next_token_logprobs(model, chorus, s, vocab, EOS) for s in (0.0, 1.0, 3.0)}
    bare = next_token_logprobs(model, Prompt(BARE, len(BARE)), 1.0, vocab, EOS)
    assert torch.allclose(lp[0.0], bare, atol=1e-5)  # scale 0: the unconditioned distribution
    # Guidance moves the log-odds of any two tokens by (s - 1) x (cond - uncond log-odds), so p(A)
    # between the planted pair rises with the scale. (Raw p(A) need not: guidance also inflates
    # rare tokens the tags make relatively likelier, e.g. the end marker in a half-trained model.)
    p_a = {s: float(torch.sigmoid(x[A] - x[B])) for s, x in (*lp.items(), ("bare", bare))}
    assert p_a[3.0] > p_a[1.0] > p_a["bare"] and 0.3 < p_a["bare"] < 0.7 and p_a[1.0] > 0.9
    assert float(lp[3.0][A] - lp[3.0][B]) > float(lp[1.0][A] - lp[1.0][B]) + 5.0
    assert float(lp[3.0][A].exp()) > 0.9  # still the planted answer, not some amplified tail token
    p_b = {s: float(next_token_logprobs(model, verse, s, vocab, EOS)[B].exp()) for s in (1.0, 3.0)}
    assert min(p_b.values()) > 0.9  # the other tag points its own way


def test_decode_samples_the_guided_mix_in_one_mixed_batch(planted):
    model, vocab = planted
    scales = [0.0] * 120 + [1.0] * 60 + [3.0] * 60
    prompts = [Prompt(CHORUS, len(CHORUS), BARE) for _ in scales] + [Prompt(VERSE, len(VERSE), BARE)] * 40
    params = [replace(RAW, seed=n, guidance=s) for n, s in enumerate(scales + [3.0] * 40)]
    out = decode(model, prompts, params, vocab, EOS)
    firsts = [d.ids[0] if d.ids else EOS for d in out]

    def share(token: int, lo: int, hi: int) -> float:
        return sum(t == token for t in firsts[lo:hi]) / (hi - lo)

    assert 0.3 < share(A, 0, 120) < 0.7  # guidance 0: the unconditioned 50/50
    assert share(A, 120, 180) >= 0.9 and share(A, 180, 240) >= 0.9
    assert share(B, 180, 240) == 0  # guidance 3 drives the other tag's answer out
    assert share(B, 240, 280) >= 0.9 and share(A, 240, 280) == 0  # verse rows, beside chorus rows
    assert all(d.stop == "end" and len(d.ids) == 1 for d in out[120:180])  # A, then the end marker
    assert all(stopped_as_said(d.stop, len(d.ids), RAW.max_new_tokens) and EOS not in d.ids for d in out)


def test_guidance_one_and_guided_batch_mates_leave_plain_rows_unchanged(tiny_fp32):
    loaded = load_checkpoint(tiny_fp32, "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    asks = [("lyrics", {"part": "chorus"}), ("review", {"genre": "Metal", "score": 7.5})]
    asks += [("lyrics", {"part": "verse"}), ("product", {"rating": 2})]
    prompts = [PromptText(header(k, t), "", header(k, {})) for k, t in asks]
    plain = [PromptText(p.header) for p in prompts]  # no unconditioned prompt at all
    # Different limits: rows leave the batch at different steps even if none writes its end marker.
    params = [Sampling(seed=n, max_new_tokens=40 - 6 * n) for n in range(len(asks))]
    guided = [replace(s, guidance=2.5) for s in params]

    alone = backend.complete(plain, params)
    assert backend.complete(prompts, [replace(s, guidance=1.0) for s in params]) == alone
    mixed = backend.complete(prompts + prompts, params + guided)
    assert mixed[: len(asks)] == alone
    # Each guided row (and its unconditioned partner) decodes as it would in a batch of its own.
    assert mixed[len(asks) :] == [backend.complete([p], [s])[0] for p, s in zip(prompts, guided, strict=True)]
    assert [r.text for r in mixed[len(asks) :]] != [r.text for r in alone]
    assert len({r.tokens for r in mixed}) > 1  # rows finished at different steps: pruning was exercised


def biased(model, bias: torch.Tensor):
    """Add ``bias`` (V,) to every logit the model returns; returns the hook handle."""
    return model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias[: out.shape[-1]])


def test_contrast_adds_the_push_away_from_the_contrasting_prompt(planted):
    model, vocab = planted
    alone = {
        name: next_token_logprobs(model, Prompt(ids, len(ids)), 1.0, vocab, EOS)
        for name, ids in (("chorus", CHORUS), ("bare", BARE), ("verse", VERSE))
    }
    contrasted = Prompt(CHORUS, len(CHORUS), BARE, VERSE)
    ok = ~vocab.banned  # header syntax is -inf in every distribution, so compare the rest
    # Log-probabilities are logits up to a constant per row, which the mix carries through softmax.
    mix = guide(alone["chorus"], alone["bare"], 2.0) + 1.5 * (alone["chorus"] - alone["verse"])
    got = next_token_logprobs(model, contrasted, 2.0, vocab, EOS, contrast=1.5)
    assert torch.allclose(got[ok], torch.log_softmax(mix[ok], -1), atol=1e-5)
    assert torch.isinf(got[~ok]).all()
    # Contrast 0, or no contrasting prompt, is guidance alone.
    guided = next_token_logprobs(model, Prompt(CHORUS, len(CHORUS), BARE), 2.0, vocab, EOS)
    assert torch.equal(next_token_logprobs(model, contrasted, 2.0, vocab, EOS, contrast=0.0), guided)
    no_partner = Prompt(CHORUS, len(CHORUS), BARE)
    assert torch.equal(next_token_logprobs(model, no_partner, 2.0, vocab, EOS, contrast=1.5), guided)
    # Away from the verse: the chorus's answer gains on the verse's as the weight grows.
    odds = [
        float(x[A] - x[B])
        for b in (0.0, 1.0, 2.0)
        for x in [next_token_logprobs(model, contrasted, 1.0, vocab, EOS, contrast=b)]
    ]
    assert odds[2] > odds[1] + 2.0 > odds[0] + 4.0


def test_contrasted_rows_decode_as_alone_beside_plain_and_guided_rows(tiny_fp32):
    loaded = load_checkpoint(tiny_fp32, "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    asks = [
        ("review", {"genre": "Metal", "score": 2.0}),
        ("product", {"rating": 1}),
        ("lyrics", {"part": "verse"}),
        ("lyrics", {}),
    ]
    parts = {"lyrics": ["verse", "chorus"]}  # what the card knows of the tag each kind swaps
    mirrored = [contrast_tags(k, t, (0.0, 10.0), parts.get(k, ())) for k, t in asks]
    prompts = [
        PromptText(header(k, t), "", header(k, {}), header(k, m) if m else "")
        for (k, t), m in zip(asks, mirrored, strict=True)
    ]
    params = [Sampling(seed=n, max_new_tokens=36 - 5 * n) for n in range(len(asks))]
    contrasted = [replace(s, contrast=1.0) for s in params]
    both = [replace(s, guidance=2.0, contrast=1.0) for s in params]
    mixed = backend.complete(prompts * 3, params + contrasted + both)
    assert mixed == [
        backend.complete([p], [s])[0] for p, s in zip(prompts * 3, params + contrasted + both, strict=True)
    ]
    n = len(asks)
    # The contrast changed what the review, the product and the verse (against a chorus) wrote.
    assert all(mixed[i] != mixed[n + i] for i in range(3))
    assert mixed[3] == mixed[n + 3]  # a song with no part has nothing to contrast: left alone


def test_the_generator_contrasts_with_a_mirrored_score_and_a_genre_or_part_its_seed_picks(tiny_fp32):
    gen = Generator.load(tiny_fp32, GenerateConfig(min_chars=1))
    seen: list[str] = []
    complete = gen.backend.complete

    def recording(prompts, params, models=None):
        seen.extend(p.contrast_header for p in prompts)
        return complete(prompts, params, models)

    gen.backend.complete = recording  # type: ignore[method-assign]
    others = sorted(set(gen.card.values("review", "genre")) - {"Metal"})
    asks = [
        Request(
            "review",
            {"genre": "Metal", "score": 2.0},
            sampling=Sampling(seed=n, contrast=1.0, max_new_tokens=8),
        )
        for n in (0, 1, 0)
    ]
    first = gen.generate(asks)
    lo, hi = gen.card.score_range()
    want = [
        header(
            "review", {"genre": others[n % len(others)], "score": round(lo + hi - 2.0, 1)}, gen.card.rendering
        )
        for n in (0, 1, 0)
    ]
    assert seen[:3] == want and want[0] != want[1]
    assert first[0].text == first[2].text  # the same seed, the same contrast, the same text
    seen.clear()
    gen.generate([replace(asks[0], sampling=replace(asks[0].sampling, contrast=0.0))])
    assert seen and set(seen) == {""}  # no contrast weight: no contrasting row (retries included)
    # A song is contrasted with another part the card knows, its artist kept.
    parts = sorted(set(gen.card.values("lyrics", "part")) - {"chorus"})
    seen.clear()
    gen.generate(
        [Request("lyrics", {"part": "chorus"}, sampling=Sampling(seed=1, contrast=1.0, max_new_tokens=8))]
    )
    assert seen[0] == header("lyrics", {"part": parts[1 % len(parts)]}, gen.card.rendering)


def test_planted_header_preference_is_suppressed(planted):
    model, vocab = planted
    bias = torch.zeros(len(TOKENS))
    for t in ("<", "x<", "|", "|>", "\\", "\\|", " la"):
        bias[ID[t]] = 15.0
    bias[ID["<|lyrics|>"]] = bias[ID["<\\|"]] = 20.0
    handle = biased(model, bias)
    try:
        with torch.inference_mode():
            raw = model(input_ids=torch.tensor([CHORUS])).logits[0, -1]
        assert TOKENS[int(raw.argmax())] in {"<|lyrics|>", "<\\|"}  # it would write a header
        params = [replace(RAW, seed=n, max_new_tokens=30) for n in range(64)]
        out = decode(model, [Prompt(CHORUS, len(CHORUS))] * 64, params, vocab, EOS)
    finally:
        handle.remove()
    texts = [text(d.ids) for d in out]
    assert not [t for t in texts if HEADER_OPEN in t or "<\\|" in t]
    assert all(stopped_as_said(d.stop, len(d.ids), 30) and EOS not in d.ids for d in out)
    # The split cases were really exercised: "<" then something, "<" then "\" then something.
    assert sum(t.count("<") for t in texts) > 50 and any("<\\" in t[:-1] for t in texts)


def test_the_end_marker_is_the_only_way_out(planted):
    model, vocab = planted
    bias = torch.zeros(len(TOKENS))
    bias[ID["<|lyrics|>"]] = 50.0  # the model would start another header right away
    greedy = replace(RAW, temperature=0.0, max_new_tokens=5)
    handle = biased(model, bias)
    try:
        (done, cut) = decode(
            model,
            [Prompt(CHORUS, len(CHORUS))] * 2,
            [greedy, replace(greedy, max_new_tokens=1)],
            vocab,
            EOS,
        )
    finally:
        handle.remove()
    assert (done.ids, done.stop) == ([A], "end") and (cut.ids, cut.stop) == ([A], "length")


def test_vocab_masks_split_header_syntax():
    vocab = Vocab.build(TOKENS, EOS)
    banned = {TOKENS[i] for i in vocab.banned.nonzero().flatten().tolist()}
    assert banned == {"<|lyrics|>", "<\\|"}  # the end marker stays allowed
    after_lt = {TOKENS[i] for i in vocab.banned_after("x<").nonzero().flatten().tolist()}
    assert after_lt == banned | {"|", "|>", "\\|"}
    after_escape = {TOKENS[i] for i in vocab.banned_after("a <\\").nonzero().flatten().tolist()}
    assert after_escape == banned | {"|", "|>"}
    assert vocab.banned_after("a <\\\\") is vocab.banned  # "<\\|" unescapes to "<\|": harmless


def test_real_tokenizer_never_writes_header_syntax(tiny_fp32):
    loaded = load_checkpoint(tiny_fp32, "fp32", "cpu")
    backend = LocalBackend(loaded.model, loaded.tokenizer)
    # Push every token that could begin or continue header syntax to the top.
    bias = torch.zeros(len(backend.token_text))
    for i, t in enumerate(backend.token_text):
        if i != backend.eos and ("<" in t or t.startswith(("|", "\\"))):
            bias[i] = 12.0
    handle = biased(loaded.model, bias)
    try:
        prompts = [PromptText(header("review", {"genre": "Metal", "score": 7.5}))] * 16
        raws = backend.complete(prompts, [Sampling(seed=n, max_new_tokens=40) for n in range(16)])
    finally:
        handle.remove()
    assert all(HEADER_OPEN not in r.text and "<\\|" not in r.text for r in raws)
    assert all(stopped_as_said(r.stop, r.tokens, 40) for r in raws)
    assert sum(r.text.count("<") for r in raws) > 16


def test_seed_line_cannot_smuggle_header_syntax(tiny_fp32):
    from linernotes.model.config import GenerateConfig
    from linernotes.model.generator import Generator, Request

    gen = Generator.load(tiny_fp32, GenerateConfig(device="cpu", min_chars=1))
    seed = "we ride <\\|review|> at <|lyrics|> dawn <"
    (result,) = gen.generate(
        [Request("lyrics", {"part": "chorus"}, seed, Sampling(seed=3, max_new_tokens=30))]
    )
    assert HEADER_OPEN not in result.text and HEADER_OPEN not in (result.request.seed_line or "")
    assert result.text.startswith(result.request.seed_line)
    assert stopped_as_said(result.stop, result.tokens, 30)


def test_export_stores_the_default_guidance(tiny_run, tmp_path, capsys):
    from linernotes.cli.main import main

    out = tmp_path / "guided"
    assert main(["export", str(tiny_run), "--out", str(out), "--precision", "fp32", "--guidance", "2.5"]) == 0
    assert read_card(out).generation["guidance"] == read_card(out).generation["sampling"]["guidance"] == 2.5
    assert "guidance 2.5" in capsys.readouterr().out
    assert all(read_card(out).guidance(kind) == 2.5 for kind in ("review", "product", "lyrics"))
    assert read_card(out).contrast("review") == 0.0 and "contrast_by_kind" not in read_card(out).generation
    # generate uses the card's default and says why each text stopped
    argv = ["generate", str(out), "lyrics", "--part", "chorus", "--seed", "1", "-n", "2", "--json"]
    assert main([*argv, "--max-new-tokens", "20", "--device", "cpu"]) in (0, 1)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sampling"]["guidance"] for r in lines] == [2.5, 2.5]
    assert all(stopped_as_said(r["stop"], r["tokens"], 20) for r in lines)


@pytest.mark.parametrize("bad", ["-0.5", "nan", "inf"])
def test_export_rejects_a_bad_guidance(tiny_run, tmp_path, capsys, bad):
    from linernotes.cli.main import main
    from linernotes.training.export import export

    out = tmp_path / "never"
    assert main(["export", str(tiny_run), "--out", str(out), "--guidance", bad]) == 2
    assert "--guidance must be a number >= 0" in capsys.readouterr().err and not out.exists()
    with pytest.raises(ConfigError, match="--guidance"):
        export(tiny_run, out, "fp32", steering=Steering(guidance=float(bad)))


def test_export_stores_a_scale_and_a_contrast_per_kind_and_each_kind_samples_at_its_own(
    tiny_run, tmp_path, capsys
):
    from linernotes.cli.main import main

    out = tmp_path / "per-kind"
    argv = ["export", str(tiny_run), "--out", str(out), "--precision", "fp32", "--guidance", "1.5"]
    argv += ["--kind-guidance", "review=2", "--kind-guidance", "lyrics=0.5"]
    argv += ["--kind-candidates", "review=4", "--kind-repetition-penalty", "lyrics=1.02"]
    assert main([*argv, "--contrast", "1", "--kind-contrast", "product=0.5"]) == 0
    card = read_card(out)
    # Lyrics repeat their hooks: their penalty is their own, the others keep the sampling default.
    assert (card.repetition_penalty("lyrics"), card.repetition_penalty("review")) == (1.02, 1.1)
    # Warm-up's drafts per cached text: the review's 4, the others one (no ranking).
    assert (card.candidates("review"), card.candidates("lyrics"), card.candidates("product")) == (4, 1, 1)
    assert (card.guidance("review"), card.guidance("lyrics"), card.guidance("product")) == (2.0, 0.5, 1.5)
    # Lyrics are contrasted too: by their part.
    assert (card.contrast("review"), card.contrast("lyrics"), card.contrast("product")) == (1.0, 1.0, 0.5)
    said = capsys.readouterr().out
    assert re.search(r"review \(\d+ examples, guidance 2, contrast 1, best of 4 drafts warmed\)", said)
    assert re.search(r"lyrics \(\d+ examples, guidance 0.5, contrast 1, repetition penalty 1.02\)", said)
    asks = [
        (["review", "--genre", "Rock", "--score", "3"], (2.0, 1.0, 1.1)),
        (["lyrics", "--part", "verse"], (0.5, 1.0, 1.02)),
        # The flags win over the card's.
        (["review", "--genre", "Rock", "--score", "3", "--contrast", "0"], (2.0, 0.0, 1.1)),
        (["lyrics", "--part", "verse", "--repetition-penalty", "1.3"], (0.5, 1.0, 1.3)),
    ]
    for ask, want in asks:
        run = [
            "generate",
            str(out),
            *ask,
            "--seed",
            "1",
            "--json",
            "--max-new-tokens",
            "12",
            "--device",
            "cpu",
        ]
        assert main(run) in (0, 1)
        sampling = json.loads(capsys.readouterr().out.splitlines()[0])["sampling"]
        assert (sampling["guidance"], sampling["contrast"], sampling["repetition_penalty"]) == want


@pytest.mark.parametrize("bad", ["poem=2", "review", "review=loud"])
def test_export_names_a_bad_kind_guidance(tiny_run, tmp_path, capsys, bad):
    from linernotes.cli.main import main

    out = tmp_path / "never"
    assert main(["export", str(tiny_run), "--out", str(out), "--kind-guidance", bad]) == 2
    assert f"--kind-guidance {bad!r}: expected KIND=SCALE" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("argv", [["--contrast", "-1"], ["--kind-contrast", "review=much"]])
def test_export_names_a_bad_contrast(tiny_run, tmp_path, capsys, argv):
    from linernotes.cli.main import main

    out = tmp_path / "never"
    assert main(["export", str(tiny_run), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert (
        "--contrast must be a number >= 0" in err or "--kind-contrast 'review=much'" in err
    ) and not out.exists()


@pytest.mark.parametrize("argv", [["--candidates", "0"], ["--kind-candidates", "review=2.5"]])
def test_export_names_a_bad_count_of_drafts(tiny_run, tmp_path, capsys, argv):
    from linernotes.cli.main import main

    out = tmp_path / "never"
    assert main(["export", str(tiny_run), "--out", str(out), *argv]) == 2
    assert "--candidates must be a whole number >= 1" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--repetition-penalty", "0.9"], "--repetition-penalty must be a number >= 1 (1: off), got 0.9"),
        (["--kind-repetition-penalty", "lyrics=0.5"], "--repetition-penalty must be a number >= 1"),
        (
            ["--kind-repetition-penalty", "lyrics"],
            "--kind-repetition-penalty 'lyrics': expected KIND=PENALTY",
        ),
    ],
)
def test_export_names_a_bad_repetition_penalty(tiny_run, tmp_path, capsys, argv, said):
    from linernotes.cli.main import main

    out = tmp_path / "never"
    assert main(["export", str(tiny_run), "--out", str(out), *argv]) == 2
    assert said in capsys.readouterr().err and not out.exists()
