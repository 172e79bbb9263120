"""A teacher behind HTTP: an OpenAI-compatible ``/v1/embeddings`` API, or a generic JSON POST whose reply holds the
vectors at a configurable dotted path (e.g. ``result.logits``).

Requests run ``concurrency`` at a time and are yielded as they complete, so a labelling job stores each answer as
soon as it arrives; once one fails for good, the others stop retrying and nothing more is sent. Every reply must
have the vector width of ``dim``, or else of the first reply. The API key is read from the environment variable the
config names; it is sent in the ``Authorization`` header and appears nowhere else (not in identity, caches, errors
or logs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgedistill.config import HttpTeacherConfig
from edgedistill.errors import ConfigError, InputError
from edgedistill.models.teachers.base import Teacher
from edgedistill.models.teachers.http_client import JsonPoster, RateLimiter, as_they_arrive


def at_path(reply: Any, path: str) -> Any:
    """Follow a dotted path (``data.0.embedding``-style keys and list indices) into a JSON reply."""
    node = reply
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(part)
    return node


def api_headers(cfg: HttpTeacherConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if cfg.api_key_env:
        key = os.environ.get(cfg.api_key_env)
        if not key:
            raise ConfigError(f"teacher.http.api_key_env: environment variable {cfg.api_key_env} is not set")
        headers["Authorization"] = f"Bearer {key}"
    return headers


class HttpTeacher(Teacher):
    name = "http"

    def __init__(self, cfg: HttpTeacherConfig):
        self.cfg = cfg
        self.poster = JsonPoster(cfg.url, api_headers(cfg), cfg.timeout_s, cfg.retries, cfg.backoff_s,
                                 RateLimiter(cfg.rps), cfg.max_retry_after_s)
        self.width = cfg.dim  # fixed by the first reply when the config leaves it open
        self.width_lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        c = self.cfg
        return {"source": "http", "url": c.url, "api": c.api, "model": c.model, "response_path": c.response_path}

    def body(self, texts: list[str]) -> dict[str, Any]:
        if self.cfg.api == "openai-embeddings":
            return {"input": texts, "model": self.cfg.model, "encoding_format": "float"}
        return {self.cfg.input_field: texts}

    def vectors(self, reply: Any, count: int) -> np.ndarray:
        try:
            if self.cfg.api == "openai-embeddings":
                rows = sorted(reply["data"], key=lambda r: r["index"])
                raw = [r["embedding"] for r in rows]
            else:
                raw = at_path(reply, self.cfg.response_path)
            out = np.asarray(raw, dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"http teacher: reply from {self.cfg.url} has no vectors where expected ({err})") from None
        if out.ndim != 2 or out.shape[0] != count:
            raise InputError(f"http teacher: {self.cfg.url} returned vectors of shape {out.shape}, expected {count}xD")
        self.check_width(out.shape[1])
        return out

    def check_width(self, width: int) -> None:
        """The first reply fixes the width (unless ``dim`` did); a reply of another width is an error."""
        with self.width_lock:
            expected = self.width = self.width or width
        if width != expected:
            where = "teacher.http.dim" if self.cfg.dim else "the first reply's width"
            raise InputError(f"http teacher: {self.cfg.url} returned vectors of width {width}, but {where} is "
                             f"{expected}; nothing was stored for them (check the endpoint and its model)")

    def run(self, texts: list[str]) -> np.ndarray:
        return self.vectors(self.poster.post(self.body(texts)), len(texts))

    def label(self, batches: list[list[str]]) -> Iterator[tuple[int, np.ndarray]]:
        """Run batches ``concurrency`` at a time; yield each as it is answered (so it can be stored at once).

        Raises:
            InputError: a batch failed for good; the requests still in flight stop retrying and no other is sent.
        """
        self.poster.stop.clear()
        # the job has failed: in-flight requests end their retries
        yield from as_they_arrive(batches, self.run, self.cfg.concurrency, self.poster.stop.set)
