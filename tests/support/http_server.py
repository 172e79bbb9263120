"""A small teacher server on 127.0.0.1 for tests and benchmarks, with scripted failures.

Each request pops the next action from ``script`` (``ok`` once it is empty): ``500``, ``429``, ``malformed``
(invalid JSON), ``timeout`` (answers after ``slow_s``), ``short`` (one vector too few). Vectors are
[len(text), number of words, 1.0], so tests know every answer by hand.
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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, body: dict[str, Any], auth: str | None) -> str:
        with self.lock:
            self.requests.append({"body": body, "auth": auth})
            return self.script.pop(0) if self.script else "ok"


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def reply(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            action = state.next_action(body, self.headers.get("Authorization"))
            time.sleep(state.slow_s if action == "timeout" else state.latency_s)
            if action.isdigit():  # an injected HTTP status: 429, 500, 503, ...
                return self.reply(int(action), b'{"error": "injected"}')
            if action == "malformed":
                return self.reply(200, b'{"data": [')
            texts = body.get("input") or body.get("inputs") or []
            vectors = [vector(t) for t in texts][: -1 if action == "short" else None]
            if self.path.endswith("/embeddings"):
                data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
                payload = {"object": "list", "data": data[::-1], "model": body.get("model")}  # out of order
            else:
                payload = {"result": {"logits": vectors}}
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                self.reply(200, json.dumps(payload).encode())

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
