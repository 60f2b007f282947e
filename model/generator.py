"""``Generator``: conditioned, batched generation from a checkpoint, with clean stops and a copy guard.

It knows nothing about Discord: it takes requests (kind, tags, optional seed line, sampling) and
returns finished texts with everything needed to reproduce them. It is not thread-safe; callers
that serve many users feed it from one worker (``model.worker``), attaching and detaching included.

LoRA adapters trained on the checkpoint can be attached by name (``attach``); a request names one
(``Request.model``) or none (the checkpoint's own weights), and one batch may mix them. Each request is
then validated against its adapter's card, checked by its adapter's copy guard (and the base's) and
recorded under its adapter's ``model_id``, so texts from different adapters never share an id (nor a
cache key).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from linernotes.common.errors import ConfigError, TagError
from linernotes.data.format import SWAPPED, contrast_tags, escape_body, header
from linernotes.model.adapters import Adapter, read_adapter_card, unknown_adapter
from linernotes.model.backends import Backend, LocalBackend, OpenAIBackend, PromptText
from linernotes.model.card import Card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.model.config import GenerateConfig, Sampling
from linernotes.model.copyguard import CopyCheck, CopyGuard
from linernotes.model.postprocess import acceptable, finish
from linernotes.model.rank import Ranker
from linernotes.model.seedline import sanitize_seed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One thing to write: kind, tags, an optional first line, and how to sample."""

    kind: str
    tags: dict[str, Any]
    seed_line: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    model: str | None = None  # an attached adapter's name; None: the checkpoint's own weights
    # Write this many and keep the one the checkpoint's ranker finds most on-tag (model/rank.py). For
    # background work: it costs ``candidates`` generations. Without a ranker, one is written.
    candidates: int = 1


@dataclass
class Result:
    """A finished generation, or the reason there is none (``ok`` False)."""

    request: Request  # tags normalized, seed line sanitized, sampling with the seed used
    text: str
    ok: bool
    attempts: int
    stop: str  # why the (last) draft ended: "end" (the end marker: a clean stop) | "length"
    tokens: int
    seconds: float
    model_id: str
    copy: CopyCheck | None = None
    error: str | None = None
    ranked: int = 1  # candidates this one was chosen from
    rank_score: float | None = None  # the ranker's score of the chosen one (higher: more on-tag)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (for ``--json`` and the bot's database)."""
        return {
            "kind": self.request.kind,
            "tags": self.request.tags,
            "seed_line": self.request.seed_line,
            "text": self.text,
            "ok": self.ok,
            "error": self.error,
            "model_id": self.model_id,
            "adapter": self.request.model,
            "sampling": self.request.sampling.to_dict(),
            "attempts": self.attempts,
            "stop": self.stop,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "ranked": self.ranked,
            "rank_score": None if self.rank_score is None else round(self.rank_score, 4),
            "copy": None
            if self.copy is None
            else {"longest_run": self.copy.longest_run, "share": self.copy.share},
        }


class Generator:
    """Validates requests against the checkpoint card and turns them into finished texts."""

    def __init__(
        self,
        backend: Backend,
        card: Card,
        guard: CopyGuard | None,
        config: GenerateConfig,
        ranker: Ranker | None = None,
    ) -> None:
        self.backend, self.card, self.guard, self.config = backend, card, guard, config
        self.ranker = ranker
        self._adapters: dict[str, Adapter] = {}

    @classmethod
    def load(cls, path: Path | str, config: GenerateConfig | None = None) -> Generator:
        """Open a checkpoint with the configured backend."""
        config = config or GenerateConfig()
        path = Path(path)
        if config.backend == "openai":
            from linernotes.model.card import read_card

            card = read_card(path)
            backend: Backend = OpenAIBackend(config.backend_url or "", config.backend_model or card.model_id)
        else:
            loaded = load_checkpoint(path, config.precision, config.device)
            card, backend = loaded.card, LocalBackend(loaded.model, loaded.tokenizer)
        guard = CopyGuard.load(path, config.copy_run, config.copy_share)
        precision = "remote" if config.backend == "openai" else loaded.precision
        log.info(
            "loaded %s (stored %s, running %s, %s backend, copy guard %s)",
            card.model_id,
            card.precision,
            precision,
            backend.name,
            "on" if guard else "absent",
        )
        return cls(backend, card, guard, config, Ranker.load(path))

    @property
    def model_id(self) -> str:
        """The checkpoint's id, recorded with every generation."""
        return self.card.model_id

    @property
    def adapters(self) -> list[str]:
        """Names of the attached adapters, in the order they were first attached."""
        return list(self._adapters)

    def attach(self, name: str, path: Path | str) -> Card:
        """Serve the LoRA adapter checkpoint at ``path`` as ``name`` (replacing one so named); its card."""
        if not name:
            raise ConfigError("an adapter needs a non-empty name")
        path = Path(path)
        card = read_adapter_card(path, self.card)
        # The adapter's own index: its text must not repeat what its own training data holds.
        guard = CopyGuard.load(path, self.config.copy_run, self.config.copy_share)
        self.backend.attach(name, path, card)
        self._adapters[name] = Adapter(name, path, card, guard)
        log.info("attached %s as %r (copy guard %s)", card.model_id, name, "on" if guard else "absent")
        return card

    def detach(self, name: str) -> None:
        """Stop serving the adapter ``name``; requests naming it are refused from then on."""
        if name not in self._adapters:
            raise unknown_adapter(name, self.adapters)
        self.backend.detach(name)
        del self._adapters[name]
        log.info("detached %r", name)

    def _served(self, model: str | None) -> tuple[Card, list[CopyGuard]]:
        """The card and copy guards of the weights a request names: an adapter's text is checked against
        its own training data and against the base's (it was fine-tuned from a model that saw that too)."""
        base = [self.guard] if self.guard else []
        if model is None:
            return self.card, base
        if model not in self._adapters:
            raise unknown_adapter(model, self.adapters)
        adapter = self._adapters[model]
        return adapter.card, ([adapter.guard] if adapter.guard else []) + base

    def prepare(self, request: Request) -> Request:
        """The request with tags checked against its model's card, seed line sanitized and a seed chosen."""
        card, _ = self._served(request.model)
        tags = card.check_request(request.kind, request.tags)
        if request.seed_line and request.kind != "lyrics":
            raise TagError("a seed line is only for lyrics")
        if request.candidates < 1:
            raise ConfigError(f"candidates must be at least 1, got {request.candidates}")
        seed = request.sampling.seed if request.sampling.seed is not None else secrets.randbits(31)
        sampling = request.sampling.with_seed(seed)
        return replace(request, tags=tags, seed_line=sanitize_seed(request.seed_line), sampling=sampling)

    def generate(self, requests: list[Request]) -> list[Result]:
        """Finished texts for every request, in order; unacceptable drafts are retried with new seeds."""
        return self.generate_prepared([self.prepare(r) for r in requests])

    def generate_prepared(self, prepared: list[Request]) -> list[Result]:
        """``generate`` for requests already through ``prepare`` (a batch gathered from several callers)."""
        groups = [self._candidates(r) for r in prepared]
        drafts = [c for group in groups for c in group]
        results: list[Result] = []
        for start in range(0, len(drafts), self.config.max_batch):
            results.extend(self._generate_batch(drafts[start : start + self.config.max_batch]))
        chosen, at = [], 0
        for group in groups:
            n = len(group)
            chosen.append(self._best(results[at : at + n]) if n > 1 else results[at])
            at += n
        return chosen

    def _candidates(self, r: Request) -> list[Request]:
        """The drafts written for ``r``: one, or ``r.candidates`` with seeds apart by more than any retry's."""
        if r.candidates == 1 or self.ranker is None:
            return [r]
        seed = r.sampling.seed or 0
        return [
            replace(r, sampling=r.sampling.with_seed((seed + 1000 * i) % 2**31)) for i in range(r.candidates)
        ]

    def _best(self, drafts: list[Result]) -> Result:
        """The acceptable draft the ranker scores highest (the first draft when none is acceptable)."""
        ok = [d for d in drafts if d.ok]
        if not ok:
            return replace(drafts[0], ranked=len(drafts))
        first = ok[0].request
        assert self.ranker is not None  # only ranked requests have several drafts
        scores = self.ranker.score(first.kind, first.tags, [d.text for d in ok])
        best = int(scores.argmax())
        return replace(ok[best], ranked=len(drafts), rank_score=float(scores[best]))

    def _generate_batch(self, requests: list[Request]) -> list[Result]:
        started = time.perf_counter()
        done: dict[int, Result] = {}
        pending = list(range(len(requests)))
        for attempt in range(1, self.config.max_attempts + 1):
            # Each retry shifts the seed, so retries are as reproducible as first tries.
            params = [
                replace(requests[i].sampling, seed=requests[i].sampling.seed + attempt - 1) for i in pending
            ]
            prompts = [self._prompt(requests[i]) for i in pending]
            raws = self.backend.complete(prompts, params, [requests[i].model for i in pending])
            retry = []
            for i, raw, p in zip(pending, raws, params, strict=True):
                result = self._finish(requests[i], raw.text, raw.stop, raw.tokens, attempt, p)
                result.seconds = time.perf_counter() - started
                done[i] = result
                if not result.ok:
                    retry.append(i)
            pending = retry
            if not pending:
                break
        return [done[i] for i in range(len(requests))]

    def _prompt(self, r: Request) -> PromptText:
        body = escape_body(r.seed_line) + "\n" if r.seed_line else ""
        # Every adapter is trained on this checkpoint's rendering (``read_adapter_card`` checks), so one
        # rendering prompts every row of a mixed batch.
        rendering = self.card.rendering
        contrasting = None
        if r.sampling.contrast:
            known = self.card.values(r.kind, SWAPPED.get(r.kind, ""))
            contrasting = contrast_tags(r.kind, r.tags, self.card.score_range(), known, r.sampling.seed or 0)
        return PromptText(
            header(r.kind, r.tags, rendering),
            body,
            header(r.kind, {}, rendering),
            header(r.kind, contrasting, rendering) if contrasting is not None else "",
        )

    def _finish(self, r: Request, raw: str, stop: str, tokens: int, attempt: int, used: Sampling) -> Result:
        card, guards = self._served(r.model)
        text = finish(raw, r.kind, stop, self.config.limit)
        checks = [g.check(text) for g in guards] if text else []
        # The worst of the checks decides (and is what the result reports).
        check = max(checks, key=lambda c: (c.copied, c.longest_run), default=None)
        if r.seed_line:
            # ``finish`` unescapes, so escape first: a seed "<\|" must not come out as "<|".
            text = finish(escape_body(r.seed_line + "\n" + text), r.kind, "end", self.config.limit)
        request = replace(r, sampling=used)
        result = Result(request, text, True, attempt, stop, tokens, 0.0, card.model_id, check)
        if check is not None and check.copied:
            # Never hand copied training text to a caller, even one that ignores ``ok``.
            result.ok, result.text = False, ""
            result.error = f"reproduced training text ({check.longest_run} words in a row)"
        elif not acceptable(text, r.kind, self.config.min_chars):
            result.ok, result.error = False, f"too short ({len(text)} characters, stopped by {stop})"
        return result
