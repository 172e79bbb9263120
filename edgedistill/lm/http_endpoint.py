"""The two routes of an OpenAI-compatible API (``/chat/completions``, ``/completions``) behind one rate limit and one
stop signal, with errors a user can act on.

Retries, back-off, ``Retry-After`` and the rate limit come from
:class:`~edgedistill.models.teachers.http_client.JsonPoster`; :class:`LMPoster` only changes how one attempt reads a
failure: an HTML page is said to be one (the URL is probably not the API base), and a refused request shows its
status and the server's own message. The API key is sent in the ``Authorization`` header only: it is never part of
an error (401/403 replies are not quoted, since some servers echo a masked key, and any message quoted is scrubbed
of it).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from edgedistill.config.http_lm import HttpLMConfig
from edgedistill.errors import ConfigError, InputError
from edgedistill.models.teachers.http_client import (
    RETRY_STATUS,
    JsonPoster,
    RateLimiter,
    RetryableError,
    retry_after_seconds,
)

ROUTES = {"chat": "chat/completions", "completions": "completions"}


class HttpStatusError(InputError):
    """The server refused the request for good (a 4xx, an HTML page, ...); ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def api_key(cfg: HttpLMConfig) -> str | None:
    """The key from the environment variable the config names (None when it names none)."""
    if not cfg.api_key_env:
        return None
    key = os.environ.get(cfg.api_key_env)
    if not key:
        raise ConfigError(f"teacher.http.api_key_env: environment variable {cfg.api_key_env} is not set; export the "
                          "API key in it (or remove api_key_env for a server without a key)")
    return key


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def server_message(raw: bytes) -> str:
    """The ``error.message`` (or ``message`` / ``detail`` / ``error``) of a JSON error body, else ''."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if not isinstance(doc, dict):
        return ""
    err = doc.get("error")
    message = err.get("message") if isinstance(err, dict) else err
    message = message or doc.get("message") or doc.get("detail") or ""
    return " ".join(str(message).split())[:200]


def error_body(err: urllib.error.HTTPError) -> bytes:
    try:
        return err.read()
    except (OSError, http.client.HTTPException):
        return b""


def looks_like_html(raw: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or raw.lstrip()[:1] == b"<"


def status_hint(status: int, model: str | None, key_env: str | None) -> str:
    """What to check for a refused request."""
    if status in (401, 403):
        return f"check the API key in ${key_env}" if key_env else "the server wants an API key: set api_key_env"
    if status == 404:
        named = f" and that the server serves model '{model}'" if model else ""
        return f"check that url is the API base ending in /v1{named}"
    return "check the request settings against what the server supports"


@dataclass
class LMPoster(JsonPoster):
    """A :class:`JsonPoster` whose single attempt says what a refusal was (status, server message, HTML)."""

    secret: str | None = None
    model: str | None = None
    key_env: str | None = None

    def refusal(self, status: int, reason: str, raw: bytes, content_type: str) -> HttpStatusError:
        said = "" if status in (401, 403) else server_message(raw)
        detail = " (an HTML page)" if looks_like_html(raw, content_type) else f": {said}" if said else ""
        message = (f"http LM teacher: POST {self.url} answered HTTP {status} {reason}{detail}; "
                   f"{status_hint(status, self.model, self.key_env)}")
        return HttpStatusError(scrub(message, self.secret), status)

    def post_once(self, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(self.url, data=json.dumps(body).encode("utf-8"), headers=self.headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw, content_type = response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as err:
            raw = error_body(err)
            if err.code in RETRY_STATUS:
                said = server_message(raw)
                raise RetryableError(scrub(f"HTTP {err.code}" + (f": {said}" if said else ""), self.secret),
                                     retry_after_seconds(err.headers.get("Retry-After"))) from None
            raise self.refusal(err.code, str(err.reason), raw, err.headers.get("Content-Type", "")) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
            raise RetryableError(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from None
        except http.client.HTTPException as err:  # IncompleteRead (a reply cut off mid-body), BadStatusLine, ...
            raise RetryableError(f"{type(err).__name__}: the reply was cut off or garbled") from None
        if looks_like_html(raw, content_type):
            raise HttpStatusError(f"http LM teacher: POST {self.url} answered HTTP 200 with an HTML page, not JSON; "
                                  "url must be the API base ending in /v1 (e.g. http://127.0.0.1:8080/v1)", 200)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError("malformed JSON in the reply") from None


class Endpoint:
    """``post(api, body)`` to ``{url}/chat/completions`` or ``{url}/completions``, sharing the rate limit and the
    ``stop`` signal that ends every request's retries once a job has failed."""

    def __init__(self, cfg: HttpLMConfig):
        self.cfg = cfg
        self.secret = api_key(cfg)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.secret:
            headers["Authorization"] = f"Bearer {self.secret}"
        limiter, self.stop = RateLimiter(cfg.rps), threading.Event()
        self.posters = {
            api: LMPoster(f"{cfg.url}/{route}", headers, cfg.timeout_s, cfg.retries, cfg.backoff_s, limiter,
                          cfg.max_retry_after_s, self.stop, secret=self.secret, model=cfg.model,
                          key_env=cfg.api_key_env)
            for api, route in ROUTES.items()}

    def url(self, api: str) -> str:
        return self.posters[api].url

    def post(self, api: str, body: dict[str, Any]) -> Any:
        """POST with retries (see :meth:`JsonPoster.post`). Raises InputError / HttpStatusError / Cancelled."""
        return self.posters[api].post(body)

    def post_no_5xx_retry(self, api: str, body: dict[str, Any]) -> Any:
        """POST where a 5xx is an answer, not a hiccup (llama.cpp refuses ``echo`` with HTTP 500); other
        retryable failures (429, timeouts, cut replies) are retried as usual.

        Raises:
            RetryableError: the server answered 5xx.
        """
        poster = self.posters[api]
        poster.limiter.wait()
        try:
            return poster.post_once(body)
        except RetryableError as err:
            if str(err).startswith("HTTP 5"):
                raise
        return poster.post(body)

    def error_text(self, text: str) -> str:
        """``text`` safe to show: the key, should a server have echoed it, replaced by ***."""
        return scrub(text, self.secret)
