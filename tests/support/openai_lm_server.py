"""An OpenAI-compatible LM server on 127.0.0.1 for tests: a tiny random causal LM (``make_tiny_lm``) really generates
(greedy, or sampled with a seed) and its real top-k logprobs are returned, in the shapes real servers use:

- ``format="openai"``: chat ``logprobs.content[]`` with ``bytes``; legacy completions ``{tokens, token_logprobs,
  top_logprobs, text_offset}``, ``echo`` scoring the prompt aligned (the first token's logprob null);
- ``format="llamacpp"`` (llama.cpp's server): ``content[]`` entries with ``id`` on both routes, ``echo`` refused
  with HTTP 500 "Only no echo is supported";
- ``format="llama-cpp-python"``: chat like OpenAI but ``bytes`` null; legacy completions whose ``echo`` entries are
  shifted by one (entry i from the distribution that predicts token i+1).

Each request pops the next action of ``script`` (``ok`` once empty): ``500``, ``429``, ``429 retry-after=S``,
``timeout`` (answers after ``slow_s``), ``cut`` (the body stops midway), ``html`` (a 200 HTML page), ``malformed``.
Modes: ``no_logprobs`` (ignores the logprobs fields), ``refuse_logprobs`` (a 400 when asked for them),
``completions_logprobs_cap`` (a 400 above it on ``/completions``), ``api_key`` (401 without it; the 401 message
quotes the header it got, as a careless server might), ``models`` (others get 404), ``latency_s`` per request.
Requests, their arrival times (monotonic) and the usage of every answer sent (``served``) are recorded. Paths other
than ``/v1/chat/completions`` and ``/v1/completions`` get a 404 HTML page.
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
from pathlib import Path
from typing import Any

ROUTES = ("/v1/chat/completions", "/v1/completions")


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet (the tiny tokenizer's), character → byte: printable bytes stand for themselves,
    the others are shifted to code points 256 and up, in order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in printable]
    return {chr(b): b for b in printable} | {chr(256 + i): b for i, b in enumerate(shifted)}


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: a tiny model gains nothing from more, and on a busy machine its threads wait for
    each other (a 2 ms forward took 0.5 s with two threads under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ServedModel:
    """The tiny LM, its tokenizer, and the torch computations behind every answer (one at a time: a lock)."""

    def __init__(self, model_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        decoder = byte_decoder()
        special = set(self.tokenizer.all_special_ids)
        self.bytes_of = [
            str(self.tokenizer.convert_ids_to_tokens(i)).encode() if i in special
            else bytes(decoder[c] for c in str(self.tokenizer.convert_ids_to_tokens(i)))
            for i in range(len(self.tokenizer))]
        self.lock = threading.Lock()
        self.cache: dict[str, Any] = {}

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.encode(str(text))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def rows(self, ids: list[int]) -> Any:
        """log-softmax of every position's next-token logits, (T, V)."""
        with self.torch.no_grad(), one_thread():
            return self.torch.log_softmax(self.model(self.torch.tensor([ids])).logits[0].double(), -1)

    def generate(self, ids: list[int], max_tokens: int, temperature: float, top_p: float, seed: int) -> list[int]:
        """New token ids (the end-of-turn token ends it and is not returned); memoized."""
        key = json.dumps([ids, max_tokens, temperature, top_p, seed])
        with self.lock:
            if key not in self.cache:
                self.cache[key] = self.sample(ids, max_tokens, temperature, top_p, seed)
            return list(self.cache[key])

    def sample(self, ids: list[int], max_tokens: int, temperature: float, top_p: float, seed: int) -> list[int]:
        torch, out = self.torch, list[int]()
        gen = torch.Generator().manual_seed(seed)
        for _ in range(max_tokens):
            row = self.rows(ids + out)[-1]
            if temperature <= 0:
                token = int(row.argmax())
            else:
                probs = torch.softmax(row / temperature, -1)
                sorted_p, order = probs.sort(descending=True)
                keep = (sorted_p.cumsum(0) - sorted_p) < top_p
                token = int(order[keep][torch.multinomial(sorted_p[keep], 1, generator=gen)])
            if token == self.tokenizer.eos_token_id:
                break
            out.append(token)
        return out

    def all_rows(self, ids: list[int]) -> Any:
        """:meth:`rows`, memoized (so a test's timing measures the server's latency, not the model)."""
        key = repr(ids)
        with self.lock:
            if key not in self.cache:
                self.cache[key] = self.rows(ids)
            return self.cache[key]


@dataclass
class LMServerState:
    model: ServedModel
    format: str = "openai"
    script: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    slow_s: float = 0.5
    no_logprobs: bool = False
    refuse_logprobs: bool = False  # 400 to any request asking for logprobs
    completions_logprobs_cap: int | None = None  # 400 above it on /completions (OpenAI's legacy cap is 5)
    api_key: str | None = None
    models: tuple[str, ...] = ("tiny",)
    requests: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    served: list[dict[str, int]] = field(default_factory=list)  # the usage of every answer sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_action(self, path: str, body: dict[str, Any], auth: str | None) -> str:
        with self.lock:
            self.requests.append({"path": path, "body": body, "auth": auth})
            self.times.append(time.monotonic())
            return self.script.pop(0) if self.script else "ok"


def token_text(raw: bytes, legacy: str) -> str:
    """A token's text: UTF-8 with replacement; legacy completions write a broken one ``bytes:\\xNN`` (OpenAI) or
    drop the broken bytes (llama-cpp-python)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if legacy == "openai":
            return "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
        return raw.decode("utf-8", errors="ignore" if legacy == "llama-cpp-python" else "replace")


class Answer:
    """One request's answer: prompt ids, generated ids, and the logprob rows of the whole sequence."""

    def __init__(self, state: LMServerState, route: str, body: dict[str, Any]):
        m = state.model
        self.state, self.route, self.body = state, route, body
        self.prompt = m.encode_chat(body["messages"]) if route.endswith("chat/completions") else m.encode(
            body["prompt"])
        self.new = m.generate(self.prompt, int(body.get("max_tokens", 16)), float(body.get("temperature", 1.0)),
                              float(body.get("top_p", 1.0)), int(body.get("seed", 0)))
        self.rows = m.all_rows(self.prompt + self.new)  # rows[t]: distribution of token t + 1
        self.k = self.top_k()

    def top_k(self) -> int | None:
        """Alternatives asked for (None: no logprobs asked, or the server ignores them)."""
        b = self.body
        if self.state.no_logprobs:
            return None
        if self.route.endswith("chat/completions"):
            return int(b.get("top_logprobs") or 0) if b.get("logprobs") else None
        return None if b.get("logprobs") is None else int(b["logprobs"])

    def text(self) -> str:
        return b"".join(self.state.model.bytes_of[t] for t in self.new).decode("utf-8", errors="replace")

    def candidate(self, token: int, row: Any) -> dict[str, Any]:
        raw = self.state.model.bytes_of[token]
        doc: dict[str, Any] = {"token": raw.decode("utf-8", errors="replace"), "logprob": float(row[token])}
        if self.state.format == "llamacpp":
            doc = {"id": token} | doc
        doc["bytes"] = None if self.state.format == "llama-cpp-python" else list(raw)
        return doc

    def content_entry(self, token: int, row: Any) -> dict[str, Any]:
        top = row.topk(self.k or 0).indices.tolist() if self.k else []
        return self.candidate(token, row) | {"top_logprobs": [self.candidate(t, row) for t in top]}

    def content(self) -> list[dict[str, Any]]:
        """``logprobs.content[]`` of the generated tokens (token j from the row before it)."""
        n = len(self.prompt)
        return [self.content_entry(t, self.rows[n + j - 1]) for j, t in enumerate(self.new)]

    def legacy(self, echo: bool) -> dict[str, Any]:
        """``{tokens, token_logprobs, top_logprobs, text_offset}``; with ``echo`` the prompt's tokens first."""
        fmt, m = self.state.format, self.state.model
        ids = self.prompt + self.new if echo else self.new
        first = 0 if echo else len(self.prompt)
        out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for p, token in enumerate(ids, start=first):
            row_at = p if fmt == "llama-cpp-python" and echo else p - 1  # llama-cpp-python's echo is shifted
            text = token_text(m.bytes_of[token], fmt)
            out["tokens"].append(text)
            out["text_offset"].append(len(b"".join(m.bytes_of[t] for t in ids[: p - first]).decode(errors="ignore")))
            if row_at < 0:
                out["token_logprobs"].append(None)
                out["top_logprobs"].append(None)
                continue
            row = self.rows[row_at]
            top = {token_text(m.bytes_of[t], fmt): float(row[t]) for t in row.topk(self.k or 1).indices.tolist()}
            out["token_logprobs"].append(float(row[token]))
            out["top_logprobs"].append(top | {text: float(row[token])})
        return out

    def usage(self) -> dict[str, int]:
        n, m = len(self.prompt), len(self.new)
        return {"prompt_tokens": n, "completion_tokens": m, "total_tokens": n + m}

    def finish_reason(self) -> str:
        return "length" if len(self.new) >= int(self.body.get("max_tokens", 16)) else "stop"

    def reply(self) -> dict[str, Any]:
        model = self.body.get("model") or self.state.models[0]
        if self.route.endswith("chat/completions"):
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": self.text()},
                                      "finish_reason": self.finish_reason()}
            if self.k is not None:
                choice["logprobs"] = {"content": self.content()}
            return {"id": "chatcmpl-1", "object": "chat.completion", "model": model, "choices": [choice],
                    "usage": self.usage()}
        echo = bool(self.body.get("echo"))
        logprobs: Any = None
        if self.k is not None:
            logprobs = {"content": self.content()} if self.state.format == "llamacpp" else self.legacy(echo)
        text = (self.body["prompt"] if echo else "") + self.text()
        return {"id": "cmpl-1", "object": "text_completion", "model": model, "usage": self.usage(),
                "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": self.finish_reason()}]}


def refusal(state: LMServerState, path: str, body: dict[str, Any], auth: str | None) -> tuple[int, Any] | None:
    """The error a real server would answer, if any: a 401, a 404 for the model, llama.cpp's echo refusal."""
    if state.api_key and auth != f"Bearer {state.api_key}":
        return 401, {"error": {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request_error"}}
    model = body.get("model")
    if model is not None and model not in state.models:
        return 404, {"error": {"message": f"The model `{model}` does not exist", "code": "model_not_found"}}
    if state.refuse_logprobs and body.get("logprobs"):
        return 400, {"error": {"message": "logprobs are not supported by this server"}}
    cap = state.completions_logprobs_cap
    if cap is not None and path == "/v1/completions" and int(body.get("logprobs") or 0) > cap:
        return 400, {"error": {"message": f"logprobs must be at most {cap}"}}
    if state.format == "llamacpp" and path.endswith("/completions") and body.get("echo"):
        return 500, {"error": {"code": 500, "message": "Only no echo is supported", "type": "server_error"}}
    return None


def make_handler(state: LMServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def reply(self, status: int, payload: bytes, kind: str = "application/json", headers: dict[str, str] | None
                  = None, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path not in ROUTES:
                return self.reply(404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html")
            action = state.next_action(self.path, body, self.headers.get("Authorization"))
            time.sleep(state.slow_s if action == "timeout" else state.latency_s)
            status, _, retry_after = action.partition(" retry-after=")
            if status.isdigit():
                headers = {"Retry-After": retry_after} if retry_after else None
                return self.reply(int(status), b'{"error": {"message": "injected"}}', headers=headers)
            if action == "html":
                return self.reply(200, b"<!doctype html><html><body>Welcome</body></html>", "text/html")
            if action == "malformed":
                return self.reply(200, b'{"choices": [')
            refused = refusal(state, self.path, body, self.headers.get("Authorization"))
            if refused:
                return self.reply(refused[0], json.dumps(refused[1]).encode())
            answer = Answer(state, self.path, body)
            payload = json.dumps(answer.reply()).encode()
            with state.lock:
                state.served.append(answer.usage())
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                if action == "cut":  # promise the whole body, send half, hang up
                    self.reply(200, payload[: len(payload) // 2], length=len(payload))
                    self.close_connection = True
                else:
                    self.reply(200, payload)

    return Handler


@contextmanager
def lm_server(state: LMServerState) -> Iterator[str]:
    """Serve on a free port; yield the API base URL (``http://127.0.0.1:PORT/v1``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
