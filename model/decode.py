"""Batched decoding: many prompts (mixed tags, mixed parameters) in one forward pass per token.

Prompts are left-padded so every row's next token sits in the last column; positions count real
tokens only, so a padded row sees the same positions it would alone. A KV cache makes each step one
token wide. Finished rows are dropped from the batch (and from the cache), so short answers do not
pay for long ones. A row stops at the end marker or at its token limit, nowhere else.

Header syntax never appears after the prompt: at every step each token whose text contains ``<|``
(or its escaped form ``<\\|``, which the finished text shows as ``<|``) is masked, the end marker
excepted; and so, right after a ``<``, is each token starting with ``|`` (BPE may split ``<|``
across tokens; likewise for the escaped form). The masks are built once per vocabulary (``Vocab``).

Classifier-free guidance: a row with ``guidance != 1`` also decodes its unconditioned prompt in the
same batch, and samples from ``uncond + s * (cond - uncond)`` (both rows then take the same token). A row
with ``contrast != 0`` and a contrasting prompt (the same tags, the score or rating mirrored, a review's
genre or a song's part swapped for another) decodes that too and adds ``contrast * (cond - contrasting)``: a
push along the score and the genre (or the part), away from the unconditioned prompt's generic text that
guidance also pushes from (measured in docs/quality.md).

LoRA adapters: given ``routes`` (one adapter slot per prompt, ``model.lora``), every forward pass runs
each column through its row's adapter, a guided row's unconditioned partner through the same one as its
row, so rows with different adapters share a batch. Without ``routes`` every row runs on the model's own
weights.

Each step does per row what these transformers logits processors do in ``generate``:
``ClassifierFreeGuidanceLogitsProcessor`` (unconditioned rows in the same batch), ``NoBadWordsLogitsProcessor``
and ``SuppressTokensLogitsProcessor`` (the header-syntax masks, decided on token text rather than ids),
``RepetitionPenaltyLogitsProcessor`` (header tokens exempt), ``TemperatureLogitsWarper``,
``TopKLogitsWarper`` and ``TopPLogitsWarper``; rows stop as ``EosTokenCriteria`` and ``max_new_tokens`` would.
The loop stays our own because ``generate`` takes one set of those settings per call, where each row here
has its own (seed, temperature, guidance scale), and it measured faster (``bench/generate_throughput.py``).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from linernotes.data.format import HEADER_OPEN, escape_body
from linernotes.model.config import Sampling
from linernotes.model.lora import Routes
from linernotes.model.sampling import guide, sample

# Text a decoded body may never contain: a header start, and its escaped form (which the finished
# text would show unescaped, as a header start).
FORBIDDEN = (HEADER_OPEN, escape_body(HEADER_OPEN))
_TAIL = 16  # characters of a row's text kept to spot forbidden text split across tokens


@dataclass(frozen=True, eq=False)
class Vocab:
    """Each token id's text, the end marker's id and the header-syntax masks; build once per tokenizer."""

    text: list[str]
    eos: int
    banned: torch.Tensor  # (V,) bool: contains forbidden text; never sampled (the end marker excepted)
    completing: dict[str, torch.Tensor]  # start of forbidden text -> (V,) bool: tokens that would finish it

    @classmethod
    def build(cls, text: list[str], eos: int) -> Vocab:
        """The masks for these token texts (a few passes over the vocabulary)."""

        def tokens(pred) -> torch.Tensor:
            mask = torch.tensor([pred(t) for t in text], dtype=torch.bool)
            if 0 <= eos < len(text):  # the end marker is the way out, so it always stays allowed
                mask[eos] = False
            return mask

        banned = tokens(lambda t: any(f in t for f in FORBIDDEN))
        completing: dict[str, torch.Tensor] = {}
        for f in FORBIDDEN:
            for k in range(1, len(f)):  # BPE may split forbidden text after any of its characters
                finish = tokens(lambda t, rest=f[k:]: t.startswith(rest))
                if f[:k] in completing:
                    finish = finish | completing[f[:k]]
                completing[f[:k]] = finish
        return cls(text, eos, banned, completing)

    def banned_after(self, tail: str) -> torch.Tensor:
        """Tokens (V,) bool that may not follow text ending in ``tail``."""
        mask = self.banned
        for start, finish in self.completing.items():
            if tail.endswith(start):  # rare (a "<" or "<\" at the end), so only then allocate
                mask = mask | finish
        return mask


@dataclass(frozen=True)
class Prompt:
    """Token ids to continue; ``n_header`` leading ids are the header (not repetition-penalised)."""

    ids: list[int]
    n_header: int
    bare_ids: list[int] | None = None  # unconditioned prompt, used when guidance != 1
    contrast_ids: list[int] | None = None  # contrasting prompt, used when contrast != 0


@dataclass
class Decoded:
    """What one row produced (excluding the prompt and the end marker) and why it stopped."""

    ids: list[int]
    stop: str  # "end" (the end marker) | "length" (max_new_tokens)


class _Row:
    """Decoding state of one request."""

    def __init__(self, prompt: Prompt, params: Sampling, vocab: Vocab) -> None:
        self.params = params
        self.gen = torch.Generator().manual_seed(params.seed if params.seed is not None else 0)
        self.seen = torch.zeros(len(vocab.text), dtype=torch.bool)
        self.seen[prompt.ids[prompt.n_header :]] = True
        self.out: list[int] = []
        # The end of the text so far (the prompt's last token included), to spot split forbidden text.
        self.tail = vocab.text[prompt.ids[-1]][-_TAIL:] if prompt.ids else ""
        self.stop: str | None = None

    def take(self, token: int, vocab: Vocab) -> None:
        """Record the sampled token; stop at the end marker or the token limit."""
        if token == vocab.eos:
            self.stop = "end"
            return
        self.out.append(token)
        self.seen[token] = True
        self.tail = (self.tail + vocab.text[token])[-_TAIL:]
        if len(self.out) >= self.params.max_new_tokens:
            self.stop = "length"


class _Batch:
    """The model side: left-padded columns, their KV cache, and the latest logits (columns, V)."""

    def __init__(
        self, model, seqs: list[list[int]], pad: int, vocab_size: int, routes: Routes | None = None
    ) -> None:
        self.model, self.vocab_size = model, vocab_size
        self.routes = routes  # (columns,) adapter slots, kept aligned with the columns; or None
        self.device = next(model.parameters()).device
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        self.mask = torch.zeros((len(seqs), width), dtype=torch.long)  # (columns, width)
        for b, seq in enumerate(seqs):
            ids[b, width - len(seq) :] = torch.tensor(seq)
            self.mask[b, width - len(seq) :] = 1
        pos = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.next_pos = pos[:, -1] + 1  # (columns,)
        self.cache = None
        self.logits = self._forward(ids, pos)

    def _forward(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        with self.routes.applied() if self.routes is not None else nullcontext():
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=self.mask.to(self.device),
                position_ids=pos.to(self.device),
                cache=self.cache,  # transformers >= 5.24's name (``past_key_values`` goes in 5.40)
                use_cache=True,
            )
        self.cache = out.cache
        # Only ids the tokenizer knows may be sampled: embedding matrices are often padded past the vocabulary.
        return out.logits[:, -1, : self.vocab_size].float().cpu()  # (columns, V)

    def step(self, columns: list[int], tokens: list[int]) -> None:
        """Keep only ``columns`` (an ordered subset), feed each its next token, refresh ``logits``."""
        if len(columns) < self.mask.shape[0]:
            self.cache.batch_select_indices(torch.tensor(columns, device=self.device))
            self.mask, self.next_pos = self.mask[columns], self.next_pos[columns]
            if self.routes is not None:
                self.routes = self.routes.take(columns)
        self.mask = torch.cat([self.mask, torch.ones((len(columns), 1), dtype=torch.long)], dim=1)
        self.logits = self._forward(torch.tensor(tokens)[:, None], self.next_pos[:, None])
        self.next_pos = self.next_pos + 1


def decode(
    model,
    prompts: list[Prompt],
    params: list[Sampling],
    vocab: Vocab,
    pad: int,
    routes: Routes | None = None,
) -> list[Decoded]:
    """Decode every prompt with its own sampling parameters (and adapter); returns one ``Decoded`` each."""
    if routes is not None and len(routes.slots) != len(prompts):
        raise ValueError(f"{len(routes.slots)} adapter routes for {len(prompts)} prompts")
    if not prompts:
        return []
    with torch.inference_mode():
        return _decode(model, prompts, params, vocab, pad, routes)


def next_token_logprobs(
    model,
    prompt: Prompt,
    guidance: float,
    vocab: Vocab,
    pad: int,
    routes: Routes | None = None,
    contrast: float = 0.0,
) -> torch.Tensor:
    """Log-probabilities (V,) of the token after ``prompt`` as decoding sees them before sampling filters.

    Guided by ``guidance`` (when ``prompt.bare_ids`` is set) and ``contrast`` (when ``prompt.contrast_ids``
    is), and header-suppressed; temperature 1, no top-k, top-p or repetition penalty; through the adapter
    ``routes`` gives the prompt, when given. For tests and evaluations of conditioning strength.
    """
    with torch.inference_mode():
        params = Sampling(guidance=guidance, contrast=contrast)
        guided, contrasted = _partnered([prompt], [params], [0])
        seqs = _columns([prompt], [0], guided, contrasted)
        columns = None if routes is None else routes.take([0] * len(seqs))  # a partner as its row
        batch = _Batch(model, seqs, pad, len(vocab.text), columns)
        row = _Row(prompt, params, vocab)
        logits = _row_logits(batch.logits, [0], guided, contrasted, [row], vocab)
        return torch.log_softmax(logits[0].double(), dim=-1)


def _partnered(prompts: list[Prompt], params: list[Sampling], live: list[int]) -> tuple[list[int], list[int]]:
    """The rows that decode an unconditioned partner (guided) and those that decode a contrasting one."""
    guided = [i for i in live if params[i].guidance != 1.0 and prompts[i].bare_ids is not None]
    contrasted = [i for i in live if params[i].contrast != 0.0 and prompts[i].contrast_ids is not None]
    return guided, contrasted


def _columns(
    prompts: list[Prompt], live: list[int], guided: list[int], contrasted: list[int]
) -> list[list[int]]:
    """Batch columns: the live rows in order, then each guided row's partner, then each contrasted row's."""
    return (
        [prompts[i].ids for i in live]
        + [prompts[i].bare_ids or [] for i in guided]
        + [prompts[i].contrast_ids or [] for i in contrasted]
    )


def _decode(
    model, prompts: list[Prompt], params: list[Sampling], vocab: Vocab, pad: int, routes: Routes | None
) -> list[Decoded]:
    rows = [_Row(p, s, vocab) for p, s in zip(prompts, params, strict=True)]
    live = list(range(len(rows)))
    guided, contrasted = _partnered(prompts, params, live)
    # A partner column contrasts with its row's own model, so it runs through the row's adapter.
    columns = None if routes is None else routes.take(live + guided + contrasted)
    batch = _Batch(model, _columns(prompts, live, guided, contrasted), pad, len(vocab.text), columns)
    for _ in range(max(s.max_new_tokens for s in params)):
        logits = _row_logits(batch.logits, live, guided, contrasted, rows, vocab)  # (live, V)
        seen = torch.stack([rows[i].seen for i in live])  # (live, V)
        tokens = sample(logits, seen, [rows[i].params for i in live], [rows[i].gen for i in live])
        chosen = dict(zip(live, tokens, strict=True))
        for i, token in chosen.items():
            rows[i].take(token, vocab)
        keep = [n for n, i in enumerate(live + guided + contrasted) if rows[i].stop is None]
        live, guided, contrasted = (
            [i for i in group if rows[i].stop is None] for group in (live, guided, contrasted)
        )
        if not live:
            break
        # A row's partners take the row's token.
        batch.step(keep, [chosen[i] for i in live + guided + contrasted])
    return [Decoded(r.out, r.stop or "length") for r in rows]


def _row_logits(
    logits: torch.Tensor,
    live: list[int],
    guided: list[int],
    contrasted: list[int],
    rows: list[_Row],
    vocab: Vocab,
) -> torch.Tensor:
    """Each live row's logits (live, V) from the batch's (columns, V): guided, header syntax masked."""
    cond = logits[: len(live)]  # (live, V)
    # Rows with neither partner keep their logits untouched, so guidance 1 is exactly plain sampling.
    out = cond.clone() if guided or contrasted else cond
    start = len(live)  # the first partner column
    if guided:
        at = torch.tensor([live.index(i) for i in guided])
        scale = torch.tensor([rows[i].params.guidance for i in guided])[:, None]  # (guided, 1)
        out[at] = guide(cond[at], logits[start : start + len(guided)], scale)
        start += len(guided)
    if contrasted:
        at = torch.tensor([live.index(i) for i in contrasted])
        weight = torch.tensor([rows[i].params.contrast for i in contrasted])[:, None]  # (contrasted, 1)
        out[at] = out[at] + weight * (cond[at] - logits[start : start + len(contrasted)])
    # Masked after mixing: -inf in both cond and uncond would make the mix NaN. One (V,) mask broadcast
    # over all rows; a row whose text ends in the start of header syntax gets its extra mask alone.
    out = out.masked_fill(vocab.banned, float("-inf"))  # (live, V), a new tensor
    for n, i in enumerate(live):
        extra = vocab.banned_after(rows[i].tail)
        if extra is not vocab.banned:
            out[n] = out[n].masked_fill(extra, float("-inf"))
    return out
