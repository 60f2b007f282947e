"""A minimal OpenAI-compatible ``/v1/completions`` server over a checkpoint, for backend tests.

It plays the part vLLM plays in production: prompt text in, completion text and finish_reason out. Like
``vllm serve BASE --enable-lora --lora-modules NAME=PATH ...`` it serves the checkpoint under its
card's ``model_id`` and LoRA adapters on it under the names given, chosen per request by ``"model"``;
any other name is answered 404, as vLLM does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from model.backends import LocalBackend, PromptText
from model.card import read_card
from model.checkpoint import load_checkpoint
from model.sampling import Sampling


class CompletionServer:
    """Serve one checkpoint (and ``adapters``: served name -> adapter checkpoint) on 127.0.0.1."""

    def __init__(self, checkpoint: Path, adapters: dict[str, Path] | None = None) -> None:
        loaded = load_checkpoint(checkpoint, "fp32", "cpu")
        self.base_name = loaded.card.model_id
        self.backend = LocalBackend(loaded.model, loaded.tokenizer)
        for name, path in (adapters or {}).items():
            self.backend.attach(name, Path(path), read_card(Path(path)))
        self.adapters = set(adapters or ())
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if self.path != "/v1/completions":
                    self.send_error(404)
                    return
                if body["model"] != server.base_name and body["model"] not in server.adapters:
                    self.send_error(404, f"The model `{body['model']}` does not exist.")
                    return
                self.reply(server.complete(body))

            def reply(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

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
