"""Registering LoRA adapters with a running vLLM server, through its runtime LoRA endpoints.

vLLM serves an adapter under a model name once it is loaded: at start-up (``--lora-modules NAME=PATH``)
or at runtime (``POST /v1/load_lora_adapter`` with ``lora_name`` and ``lora_path``, undone by ``POST
/v1/unload_lora_adapter``). The runtime routes exist only on a server started with
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (and ``--enable-lora``); elsewhere they answer 404. vLLM reads
the adapter directory itself, so the path must be one the server sees: the same machine or a shared
volume.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linernotes.common.errors import CheckpointError

log = logging.getLogger(__name__)

# In vLLM's answer when it cannot read the adapter directory: a 404 too, told from a missing route by this.
NOT_FOUND = "No adapter found"
# In vLLM's 400 answer to loading a name it already serves.
ALREADY = "already been loaded"


@dataclass(frozen=True)
class Answer:
    """An HTTP status and the body's text."""

    status: int
    text: str


def call(url: str, payload: dict[str, Any] | None, timeout: float) -> Answer:
    """GET ``url`` (no payload) or POST the payload as JSON; an error status is an answer like any other."""
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if data else {}
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.read().decode(errors="replace"))
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.read().decode(errors="replace"))


def message(text: str) -> str:
    """The message in an error body: vLLM's JSON (either shape), FastAPI's ``detail``, or the text itself."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):  # vLLM >= 0.10 nests it; older versions do not
            body = body["error"]
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key]
    return text.strip()[:500] or "(empty answer)"


def unavailable(name: str, path: Path, api: str) -> CheckpointError:
    """The error for a server that neither serves ``name`` nor can load adapters at runtime."""
    return CheckpointError(
        f"adapter {name} is not served by {api}, and that server cannot load adapters at runtime "
        f"({api}/load_lora_adapter answered 404). Either restart vLLM with "
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in its environment and --enable-lora, or list the adapter "
        f"at start-up with --lora-modules {name}={path}"
    )


def refused(name: str, path: Path, api: str, answer: Answer) -> CheckpointError:
    """The error for a load the server answered with an error, in the server's words."""
    text = message(answer.text)
    # vLLM opens the path on its own machine: a path only the bot sees is the usual cause.
    hint = " (vLLM must see this same path: run it on this machine or on a shared volume)"
    return CheckpointError(
        f"{api} refused to load adapter {name} from {path} ({answer.status}): {text}"
        + (hint if NOT_FOUND in text else "")
    )


class RuntimeLora:
    """The adapters a vLLM server at ``api`` (its ``.../v1`` URL) serves; loads and unloads them."""

    def __init__(self, api: str, timeout: float) -> None:
        self.api, self.timeout = api, timeout
        self.loaded: set[str] = set()  # names this client loaded: the only ones it unloads

    def served(self) -> set[str]:
        """The model names the server lists: its base and every adapter it has loaded."""
        answer = self._call("/models", None, "list its models")
        if answer.status != 200:
            raise CheckpointError(f"{self.api}/models answered {answer.status}: {message(answer.text)}")
        try:
            return {m["id"] for m in json.loads(answer.text)["data"]}
        except (json.JSONDecodeError, KeyError, TypeError):
            raise CheckpointError(f"{self.api}/models did not answer a model list") from None

    def ensure(self, name: str, path: Path) -> None:
        """Make the server serve the adapter directory at ``path`` (absolute) as ``name``."""
        if name in self.served():
            return  # given with --lora-modules, or loaded before (by us or another client): serve it as is
        payload = {"lora_name": name, "lora_path": str(path)}
        answer = self._call("/load_lora_adapter", payload, f"load adapter {name}")
        if answer.status == 200:
            self.loaded.add(name)
        elif answer.status == 400 and ALREADY in message(answer.text):
            return  # another client loaded it since we listed: served, but not ours to unload
        elif answer.status == 404 and NOT_FOUND not in message(answer.text):
            raise unavailable(name, path, self.api)
        else:
            raise refused(name, path, self.api, answer)

    def release(self, name: str) -> None:
        """Unload ``name`` if this client loaded it; a failure is only logged (we ask for it no more)."""
        if name not in self.loaded:
            return  # served before we came (--lora-modules, another client): not ours to take away
        self.loaded.discard(name)
        try:
            answer = self._call("/unload_lora_adapter", {"lora_name": name}, f"unload adapter {name}")
        except CheckpointError as e:
            log.warning("%s", e)
            return
        if answer.status != 200:
            text = message(answer.text)
            log.warning("%s could not unload adapter %s (%d): %s", self.api, name, answer.status, text)

    def _call(self, route: str, payload: dict[str, Any] | None, doing: str) -> Answer:
        try:
            return call(self.api + route, payload, self.timeout)
        except (OSError, ValueError, http.client.HTTPException) as e:  # unreachable, timed out, not HTTP
            raise CheckpointError(f"could not reach {self.api} to {doing}: {e}") from None
