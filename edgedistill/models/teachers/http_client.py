"""JSON POST with a timeout, retries with exponential back-off on 429/5xx/timeouts/malformed replies, and a
requests-per-second limit shared by all threads. Standard library only.

Headers (which carry the API key) are never included in errors or logs.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from edgedistill.errors import InputError

RETRY_STATUS = {429, 500, 502, 503, 504}


class RateLimiter:
    """At most ``rps`` starts per second across threads (evenly spaced); ``None`` means no limit."""

    def __init__(self, rps: float | None):
        self.interval = 1.0 / rps if rps else 0.0
        self.next_start = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class RetryableError(Exception):
    """A failure worth retrying (timeout, 429, 5xx, malformed JSON)."""


@dataclass
class JsonPoster:
    url: str
    headers: dict[str, str]
    timeout_s: float
    retries: int
    backoff_s: float
    limiter: RateLimiter

    def post_once(self, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            if err.code in RETRY_STATUS:
                raise RetryableError(f"HTTP {err.code}") from None
            raise InputError(f"http teacher: POST {self.url} answered HTTP {err.code} {err.reason}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise RetryableError(f"{type(err).__name__}: {reason}") from None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError("malformed JSON in the reply") from None

    def post(self, body: dict[str, Any]) -> Any:
        """POST ``body``; retry retryable failures with delays backoff, 2·backoff, 4·backoff, …

        Raises:
            InputError: a non-retryable status, or retries exhausted (naming the last failure).
        """
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            try:
                return self.post_once(body)
            except RetryableError as err:
                last = str(err)
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise InputError(f"http teacher: POST {self.url} failed after {self.retries} retries (last: {last}); "
                         "check the endpoint or raise teacher.http.retries / timeout_s")
