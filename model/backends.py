"""Where tokens come from: this process (a loaded checkpoint) or an OpenAI-compatible completions server.

Both take prompt texts and sampling parameters and return raw continuations with the reason each
stopped; everything else (tags, post-processing, copy guard, retries) is the generator's and is the
same for both.

Both serve LoRA adapters attached by name beside the base, a different one per row of a batch if
asked (``models``): the local backend loads each adapter's weights into its model's stacked LoRA layers
(``model.lora``); the server backend asks the server for each adapter by its served name, the adapter
card's ``model_id``, loading the adapter into the server at runtime when it does not serve that name
already (see ``model.vllm_lora``).
"""

from __future__ import annotations

import http.client
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from linernotes.common.errors import ConfigError, GenerationError
from linernotes.model.adapters import unknown_adapter
from linernotes.model.card import Card
from linernotes.model.config import Sampling
from linernotes.model.decode import FORBIDDEN, Prompt, Vocab, decode
from linernotes.model.lora import LoraBank, Routes
from linernotes.model.vllm_lora import RuntimeLora


@dataclass(frozen=True)
class PromptText:
    """A prompt as text: the header, what follows it (a seed line), the unconditioned header and the
    contrasting one (empty: none)."""

    header: str
    body: str = ""
    bare_header: str = ""
    contrast_header: str = ""


@dataclass(frozen=True)
class Raw:
    """A continuation before post-processing."""

    text: str
    stop: str  # "end" (the end marker, or a server's header-start stop string) | "length"
    tokens: int


class Backend(Protocol):
    """Produces continuations for a batch of prompts."""

    name: str

    def complete(
        self, prompts: list[PromptText], params: list[Sampling], models: list[str | None] | None = None
    ) -> list[Raw]:
        """One continuation per prompt, each from its adapter in ``models`` (None: the base weights)."""
        ...

    def attach(self, name: str, path: Path, card: Card) -> None:
        """Serve the adapter checkpoint at ``path`` (already checked against the base) as ``name``."""
        ...

    def detach(self, name: str) -> None:
        """Stop serving the adapter ``name``."""
        ...


class LocalBackend:
    """Batched decoding with the model in this process."""

    name = "local"

    def __init__(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        # One decoded string per token id, to mask header syntax without decoding whole texts per step.
        self.token_text = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self._vocab: Vocab | None = None
        self._ids: dict[str, list[int]] = {}
        self.lora = LoraBank()  # adapters loaded into ``model``

    @property
    def vocab(self) -> Vocab:
        """Token texts and header masks, built once (again only if ``token_text`` or ``eos`` is replaced)."""
        if self._vocab is None or self._vocab.text is not self.token_text or self._vocab.eos != self.eos:
            self._vocab = Vocab.build(self.token_text, self.eos)
        return self._vocab

    def _encode(self, text: str) -> list[int]:
        if text not in self._ids:  # headers repeat across requests
            if len(self._ids) > 10_000:
                self._ids.clear()
            self._ids[text] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self._ids[text]

    def complete(
        self, prompts: list[PromptText], params: list[Sampling], models: list[str | None] | None = None
    ) -> list[Raw]:
        """Decode all prompts in one batch; headers and bodies are tokenized apart, as in training."""
        token_prompts = []
        for p in prompts:
            head, body = self._encode(p.header), self._encode(p.body) if p.body else []
            bare = self._encode(p.bare_header) + body if p.bare_header else None
            contrast = self._encode(p.contrast_header) + body if p.contrast_header else None
            token_prompts.append(Prompt(head + body, len(head), bare, contrast))
        routes = self._routes(models or [None] * len(prompts))
        out = decode(self.model, token_prompts, params, self.vocab, self.pad, routes)
        return [Raw(self.tokenizer.decode(d.ids), d.stop, len(d.ids)) for d in out]

    def _routes(self, models: list[str | None]) -> Routes | None:
        if all(m is None for m in models):
            return None  # the model's own weights on every row: forwards as before adapters existed
        return Routes(self.lora, self.lora.slots(models))

    def attach(self, name: str, path: Path, card: Card) -> None:
        """Load the adapter's LoRA weights into the model as ``name`` (replacing one of that name)."""
        self.lora.load(self.model, name, path)

    def detach(self, name: str) -> None:
        """Unload the adapter ``name``; with none left the model is the plain one again."""
        self.lora.unload(self.model, name)


class OpenAIBackend:
    """An OpenAI-compatible ``/v1/completions`` server (e.g. vLLM serving the exported model)."""

    name = "openai"

    def __init__(self, url: str, model: str, timeout: float = 60.0, concurrency: int = 16) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"backend URL must start with http:// or https://, got {url!r}")
        api = url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1") else "/v1")
        self.url = api + "/completions"
        self.model, self.timeout, self.concurrency = model, timeout, concurrency
        self.served: dict[str, str] = {}  # adapter name -> the name the server serves it by
        self.lora = RuntimeLora(api, timeout)

    def complete(
        self, prompts: list[PromptText], params: list[Sampling], models: list[str | None] | None = None
    ) -> list[Raw]:
        """One HTTP request per prompt, sent concurrently (the server batches them)."""
        if any(p.guidance != 1.0 or p.contrast != 0.0 for p in params):
            raise ConfigError("guidance other than 1.0 (or a contrast) needs the local backend")
        names = [self._served_name(m) for m in models or [None] * len(prompts)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(prompts)))) as pool:
            return list(pool.map(self._one, prompts, params, names))

    def _served_name(self, model: str | None) -> str:
        if model is None:
            return self.model
        if model not in self.served:
            raise unknown_adapter(model, list(self.served))
        return self.served[model]

    def attach(self, name: str, path: Path, card: Card) -> None:
        """Ask for the adapter by its card's ``model_id``, loading it into the server unless it serves it."""
        # vLLM opens the path itself, from its own working directory: never send a relative one.
        self.lora.ensure(card.model_id, Path(path).resolve())
        replaced = self.served.get(name)
        self.served[name] = card.model_id
        if replaced is not None and replaced not in self.served.values():
            self.lora.release(replaced)  # no name asks for those weights any more

    def detach(self, name: str) -> None:
        """Stop asking for the adapter ``name``; unload it from the server if this backend loaded it."""
        if name not in self.served:
            raise unknown_adapter(name, list(self.served))
        model_id = self.served.pop(name)
        if model_id not in self.served.values():  # another name may still ask for the same weights
            self.lora.release(model_id)

    def _one(self, prompt: PromptText, s: Sampling, model: str) -> Raw:
        payload = {
            "model": model,
            "prompt": prompt.header + prompt.body,
            "max_tokens": s.max_new_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "top_k": s.top_k or -1,
            "repetition_penalty": s.repetition_penalty,
            "seed": s.seed,
            "stop": list(FORBIDDEN),  # a server cannot mask per step like ``decode``: stop there instead
        }
        req = urllib.request.Request(
            self.url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        # OSError: urllib wraps only what fails while sending (URLError); a connection the server resets or
        # closes while we read its answer comes out bare (ConnectionResetError, RemoteDisconnected).
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as e:
            raise GenerationError(f"completions server {self.url} failed: {e}") from None
        choice = body["choices"][0]
        usage = body.get("usage", {}).get("completion_tokens", 0)
        # "stop": the end marker or a header-start stop string; either way the text before it is complete.
        return Raw(choice["text"], "end" if choice.get("finish_reason") == "stop" else "length", usage)
