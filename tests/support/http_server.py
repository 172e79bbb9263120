"""A small teacher server on 127.0.0.1 for tests and benchmarks, with scripted failures.

Each request pops the next action from ``script`` (``ok`` once it is empty): ``500``, ``429``, ``malformed``
(invalid JSON), ``timeout`` (answers after ``slow_s``), ``short`` (one vector too few), ``wide`` (vectors one wider),
``cut`` (the reply stops mid-body), ``429 retry-after=S`` (a 429 whose ``Retry-After`` header is ``S``: seconds or
an HTTP date). Vectors are [len(text), number of words, 1.0], so tests know every answer by hand. Each request's
arrival time is recorded (``times``, monotonic).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def vector(text: str) -> list[float]:
    return [float(len(text)), float(len(text.split())), 1.0]


@dataclass
class ServerState:
    script: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    slow_s: float = 0.5
    requests: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    width: int = 3  # vectors are padded with zeros to this width
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, body: dict[str, Any], auth: str | None) -> str:
        with self.lock:
            self.requests.append({"body": body, "auth": auth})
            self.times.append(time.monotonic())
            return self.script.pop(0) if self.script else "ok"


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def reply(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                  length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            action = state.next_action(body, self.headers.get("Authorization"))
            time.sleep(state.slow_s if action == "timeout" else state.latency_s)
            status, _, retry_after = action.partition(" retry-after=")
            if status.isdigit():  # an injected HTTP status: 429, 500, 503, ...
                headers = {"Retry-After": retry_after} if retry_after else None
                return self.reply(int(status), b'{"error": "injected"}', headers)
            if action == "malformed":
                return self.reply(200, b'{"data": [')
            texts = body.get("input") or body.get("inputs") or []
            width = state.width + (action == "wide")
            vectors = [vector(t) + [0.0] * (width - 3) for t in texts]
            vectors = vectors[: -1 if action == "short" else None]
            if self.path.endswith("/embeddings"):
                data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
                payload = {"object": "list", "data": data[::-1], "model": body.get("model")}  # out of order
            else:
                payload = {"result": {"logits": vectors}}
            body_bytes = json.dumps(payload).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                if action == "cut":  # promise the whole body, send half, hang up
                    self.reply(200, body_bytes[: len(body_bytes) // 2], length=len(body_bytes))
                    self.close_connection = True
                else:
                    self.reply(200, body_bytes)

    return Handler


@contextmanager
def teacher_server(state: ServerState) -> Iterator[str]:
    """Serve on a free port; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
