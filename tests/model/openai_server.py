"""A minimal OpenAI-compatible ``/v1/completions`` server over a checkpoint, for backend tests.

It plays the part vLLM plays in production: prompt text in, completion text and finish_reason out. Like
``vllm serve BASE --enable-lora --lora-modules NAME=PATH ...`` it serves the checkpoint under its
card's ``model_id`` and LoRA adapters on it under the names given, chosen per request by ``"model"``;
any other name is answered 404, as vLLM does. ``GET /v1/models`` lists them all. With ``runtime_lora``
it also answers vLLM's runtime routes, as a server started with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``
does: ``/v1/load_lora_adapter`` loads an adapter directory under a new name, ``/v1/unload_lora_adapter``
drops one, with vLLM's statuses and error bodies. Without it those routes are FastAPI's 404, as by default.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from linernotes.model.backends import LocalBackend, PromptText
from linernotes.model.card import read_card
from linernotes.model.checkpoint import load_checkpoint
from linernotes.model.config import Sampling

LORA_ROUTES = ("/v1/load_lora_adapter", "/v1/unload_lora_adapter")
NO_ROUTE = (404, {"detail": "Not Found"})  # FastAPI's answer for a route the app does not have


class _Listener(ThreadingHTTPServer):
    """Connections may wait to be accepted as a real server's do (uvicorn, under vLLM, listens with a backlog
    of 2048): with socketserver's 5, a few dozen requests at once get some connections reset."""

    request_queue_size = 2048


def error(status: int, message: str, kind: str) -> tuple[int, dict]:
    """vLLM's error answer (>= 0.10): status and ``{"error": {...}}``."""
    return status, {"error": {"message": message, "type": kind, "param": None, "code": status}}


class CompletionServer:
    """Serve one checkpoint (and ``adapters``: served name -> adapter checkpoint) on 127.0.0.1."""

    def __init__(
        self, checkpoint: Path, adapters: dict[str, Path] | None = None, runtime_lora: bool = False
    ) -> None:
        loaded = load_checkpoint(checkpoint, "fp32", "cpu")
        self.base_name = loaded.card.model_id
        self.backend = LocalBackend(loaded.model, loaded.tokenizer)
        for name, path in (adapters or {}).items():
            self.backend.attach(name, Path(path), read_card(Path(path)))
        self.adapters = set(adapters or ())
        self.runtime_lora = runtime_lora
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # completion request bodies
        self.lora_calls: list[tuple[str, dict]] = []  # (route, body) of every runtime LoRA request
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/v1/models":
                    self.reply(*NO_ROUTE)
                    return
                self.reply(200, server.models())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path in LORA_ROUTES:
                    server.lora_calls.append((self.path, body))
                    self.reply(*server.lora(self.path, body))
                    return
                server.requests.append(body)
                if self.path != "/v1/completions":
                    self.send_error(404)
                    return
                if body["model"] != server.base_name and body["model"] not in server.adapters:
                    self.send_error(404, f"The model `{body['model']}` does not exist.")
                    return
                self.reply(200, server.complete(body))

            def reply(self, status: int, payload: dict | str) -> None:
                text = isinstance(payload, str)  # vLLM answers a LoRA load or unload in plain text
                data = payload.encode() if text else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                return None

        self.httpd = _Listener(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def models(self) -> dict:
        """``GET /v1/models``: the base, then each adapter (its parent the base), as vLLM lists them."""
        cards = [{"id": self.base_name, "object": "model", "parent": None}]
        cards += [{"id": a, "object": "model", "parent": self.base_name} for a in sorted(self.adapters)]
        return {"object": "list", "data": cards}

    def lora(self, route: str, body: dict) -> tuple[int, dict | str]:
        """The answer to a runtime LoRA request: a route missing unless ``runtime_lora``."""
        if not self.runtime_lora:
            return NO_ROUTE
        return self.load(body) if route == LORA_ROUTES[0] else self.unload(body)

    def load(self, body: dict) -> tuple[int, dict | str]:
        """Load the adapter directory at ``lora_path`` and serve it as ``lora_name``, as vLLM does."""
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        with self.lock:
            if name in self.adapters:
                return error(400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")
            if not (Path(path) / "adapter_config.json").is_file():  # vLLM: LoRAAdapterNotFoundError
                return error(404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError")
            try:
                self.backend.attach(name, Path(path), read_card(Path(path)))
            except Exception as e:  # vLLM answers any other failure to load with a 500 and its message
                return error(500, str(e), "InternalServerError")
            self.adapters.add(name)
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def unload(self, body: dict) -> tuple[int, dict | str]:
        """Stop serving ``lora_name`` (any adapter, given at start-up or loaded since), as vLLM does."""
        name = body.get("lora_name")
        with self.lock:
            if name not in self.adapters:
                return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
            self.backend.detach(name)
            self.adapters.discard(name)
        return 200, f"Success: LoRA adapter '{name}' removed successfully."

    def complete(self, body: dict) -> dict:
        """The completion response for one request body, from the model (or adapter) it names."""
        head, _, rest = body["prompt"].partition("\n")
        params = Sampling(
            temperature=body["temperature"],
            top_p=body["top_p"],
            top_k=max(body["top_k"], 0),
            repetition_penalty=body["repetition_penalty"],
            max_new_tokens=body["max_tokens"],
            seed=body["seed"],
        )
        adapter = None if body["model"] == self.base_name else body["model"]
        with self.lock:  # one model, one decode at a time
            (raw,) = self.backend.complete([PromptText(head + "\n", rest)], [params], [adapter])
        finish = "length" if raw.stop == "length" else "stop"
        return {
            "choices": [{"text": raw.text, "finish_reason": finish}],
            "usage": {"completion_tokens": raw.tokens},
        }

    def __enter__(self) -> CompletionServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
