"""A real HTTP server speaking the OpenAI embeddings API on 127.0.0.1, with faults on command.

Vectors are derived from (model, text) alone, so a test can compute the vector any chunk
must have. Every request is recorded with its arrival time, inputs and answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FakeEmbeddingAPI", "Fault", "Hit", "fake_vector"]


def fake_vector(model: str, text: str, dim: int) -> npt.NDArray[np.float32]:
    seed = int.from_bytes(hashlib.blake2b(f"{model}\0{text}".encode(), digest_size=8).digest())
    vector = np.random.default_rng(seed).standard_normal(dim)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def fake_tokens(text: str) -> int:
    return len(text.split()) + 1


@dataclass(frozen=True, slots=True)
class Fault:
    """How to answer one request instead of normally."""

    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    wrong_dim: bool = False
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    at: float
    """Arrival, `time.time()`."""
    model: str
    inputs: list[str]
    status: int
    tokens: int


@dataclass
class FakeEmbeddingAPI:
    models: dict[str, int]
    """Model name -> native vector size."""
    api_key: str = "test-key"
    always: Fault | None = None
    """Answer every request like this (after any scripted faults)."""
    delay_s: float = 0.0
    """Every request takes at least this long."""
    hits: list[Hit] = field(default_factory=list)
    _script: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, *faults: Fault) -> None:
        """Answer the next requests with these faults, in order."""
        with self._lock:
            self._script.extend(faults)

    def ok_hits(self) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.status == 200]

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                arrived = time.time()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, headers, payload, delay = api._answer(self.path, self.headers, body)
                inputs = body.get("input") if isinstance(body, dict) else None
                inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
                tokens = sum(fake_tokens(t) for t in inputs) if status == 200 else 0
                with api._lock:
                    api.hits.append(Hit(arrived, body.get("model", ""), inputs, status, tokens))
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that timed out and hung up: expected in these tests

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(
        self, path: str, headers: Any, body: Any
    ) -> tuple[int, dict[str, str], dict[str, Any], float]:
        with self._lock:
            fault = self._script.popleft() if self._script else self.always
        fault = fault or Fault()
        delay = max(self.delay_s, fault.delay_s)
        if path != "/v1/embeddings":
            return 404, {}, {"error": {"message": f"no route {path}"}}, delay
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {}, _error("Incorrect API key provided.", "invalid_api_key"), delay
        if fault.status != 200:
            extra = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            message = f"fault {fault.status}"
            return fault.status, extra, _error(message, fault.error_code), delay
        model = body["model"]
        if model not in self.models:
            return 404, {}, _error(f"The model `{model}` does not exist", None), delay
        dim = int(body.get("dimensions") or self.models[model]) + (1 if fault.wrong_dim else 0)
        inputs = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": fake_vector(model, t, dim).tolist()}
            for i, t in enumerate(inputs)
        ]
        data.reverse()  # clients must order by `index`
        tokens = sum(fake_tokens(t) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return 200, {}, {"object": "list", "data": data, "model": model, "usage": usage}, delay


def _error(message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
