"""A minimal OpenAI-compatible ``/v1/completions`` server over a checkpoint, for backend tests.

It plays the part vLLM plays in production: prompt text in, completion text and finish_reason out.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from model.backends import LocalBackend, PromptText
from model.checkpoint import load_checkpoint
from model.sampling import Sampling


class CompletionServer:
    """Serve one checkpoint on 127.0.0.1 in a background thread."""

    def __init__(self, checkpoint: Path) -> None:
        loaded = load_checkpoint(checkpoint, "fp32", "cpu")
        self.backend = LocalBackend(loaded.model, loaded.tokenizer)
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
                head, _, rest = body["prompt"].partition("\n")
                params = Sampling(
                    temperature=body["temperature"],
                    top_p=body["top_p"],
                    top_k=max(body["top_k"], 0),
                    repetition_penalty=body["repetition_penalty"],
                    max_new_tokens=body["max_tokens"],
                    seed=body["seed"],
                )
                with server.lock:  # one model, one decode at a time
                    (raw,) = server.backend.complete([PromptText(head + "\n", rest)], [params])
                finish = "length" if raw.stop == "length" else "stop"
                payload = {
                    "choices": [{"text": raw.text, "finish_reason": finish}],
                    "usage": {"completion_tokens": raw.tokens},
                }
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

    def __enter__(self) -> CompletionServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
