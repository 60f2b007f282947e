"""Packing wastes nothing, truncates nothing, and changes nothing a model sees."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from linernotes.data.format import make_record
from linernotes.training.loop import LMLoss
from linernotes.training.packing import (
    IGNORE,
    Encoded,
    collate,
    encode,
    epoch_blocks,
    pack,
    segments,
    useful_tokens,
)
from linernotes.training.setup import train_tokenizer

EOS = 0


def test_long_example_is_chunked_with_header_repeated_and_nothing_lost():
    ex = Encoded(header=[7, 8, 9], bare_header=[7], body=list(range(100, 200)))
    segs = segments(ex, block_size=40, eos=EOS)
    assert all(ids[:3] == [7, 8, 9] and n_head == 3 for ids, n_head in segs)
    assert all(len(ids) <= 40 for ids, _ in segs)
    body = [t for ids, _ in segs for t in ids[3:]]
    assert body == list(range(100, 200)) + [EOS]  # every body token once, end marker only at the end
    assert [ids[-1] == EOS for ids, _ in segs] == [False, False, True]


def test_unconditioned_segments_use_the_bare_header():
    ex = Encoded(header=[7, 8, 9], bare_header=[7], body=[5, 6])
    assert segments(ex, 40, EOS, unconditioned=True) == [([7, 5, 6, EOS], 1)]


def test_best_fit_packing_fills_blocks():
    segs = [([1] * n, 1) for n in (30, 10, 20, 25, 15, 60)]
    blocks = pack(segs, 64)
    assert sorted(len(ids) for b in blocks for ids, _ in b) == sorted(len(ids) for ids, _ in segs)
    assert all(sum(len(ids) for ids, _ in b) <= 64 for b in blocks)
    assert len(blocks) == 3 and useful_tokens(blocks) == 160


def test_targets_skip_headers_and_padding():
    batch = collate([[([7, 8, 5, 6, EOS], 2), ([9, 4, EOS], 1)]], block_size=10, pad=EOS)
    assert batch["targets"][0].tolist() == [IGNORE, 5, 6, EOS, IGNORE, 4, EOS, IGNORE, IGNORE, IGNORE]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 0]
    mask = batch["attention_mask"][0, 0]
    assert not mask[5, 4] and mask[6, 5] and not mask[2, 3]  # no crossing examples, causal within


def test_packed_loss_equals_separate_loss():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=64)).eval()
    loss = LMLoss(model)
    a, b = ([3, 4, 10, 11, 12, EOS], 2), ([5, 13, 14, 15, 16, 17, EOS], 1)
    with torch.no_grad():
        packed, n = loss(**collate([[a, b]], 16, EOS))
        sa, na = loss(**collate([[a]], 16, EOS))
        sb, nb = loss(**collate([[b]], 16, EOS))
    assert n == na + nb == 4 + 6
    assert torch.allclose(packed, sa + sb, atol=1e-4)


def test_epoch_order_and_dropout_are_deterministic():
    exs = [Encoded([1, 2], [1], list(range(n))) for n in range(5, 60, 3)]
    one = epoch_blocks(exs, 64, EOS, seed=3, epoch=1, tag_dropout=0.5)
    assert one == epoch_blocks(exs, 64, EOS, seed=3, epoch=1, tag_dropout=0.5)
    assert one != epoch_blocks(exs, 64, EOS, seed=3, epoch=2, tag_dropout=0.5)
    heads = [n for b in one for _, n in b]
    assert 1 in heads and 2 in heads  # some examples unconditioned, some not


def test_encode_tokenizes_header_and_body_apart():
    tok = train_tokenizer(
        ["<|review|> genre: Rock | score: 5.0\nLoud guitars and more loud guitars."] * 20, 300
    )
    rec = make_record("review", {"genre": "Rock", "score": 5}, "Loud guitars.")
    (ex,) = encode(tok, [rec])
    assert tok.decode(ex.header) == "<|review|> genre: Rock | score: 5.0\n"
    assert tok.decode(ex.bare_header) == "<|review|>\n"
    assert tok.decode(ex.body) == "Loud guitars."


def test_an_empty_split_encodes_to_nothing():
    tok = train_tokenizer(["a few words of text to learn from"] * 4, 300)
    assert encode(tok, []) == []
