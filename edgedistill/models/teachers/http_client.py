"""JSON POST with a timeout, retries with exponential back-off on 429/5xx/timeouts/cut-off or malformed replies,
the server's ``Retry-After`` honoured (capped), a requests-per-second limit shared by all threads, and a stop
signal that ends every thread's retries once the job has failed. Standard library only.

Headers (which carry the API key) are never included in errors or logs.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    """A failure worth retrying (timeout, 429, 5xx, a reply cut off or malformed); ``retry_after_s`` is the
    server's own ask, when it made one."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Cancelled(Exception):
    """The job this request belonged to has already failed; the request was not (re)sent."""


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds, or an HTTP date (RFC 9110); None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class JsonPoster:
    url: str
    headers: dict[str, str]
    timeout_s: float
    retries: int
    backoff_s: float
    limiter: RateLimiter
    max_retry_after_s: float = 60.0
    stop: threading.Event = field(default_factory=threading.Event)

    def post_once(self, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            if err.code in RETRY_STATUS:
                raise RetryableError(f"HTTP {err.code}", retry_after_seconds(err.headers.get("Retry-After"))) \
                    from None
            raise InputError(f"http teacher: POST {self.url} answered HTTP {err.code} {err.reason}") from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise RetryableError(f"{type(err).__name__}: {reason}") from None
        except http.client.HTTPException as err:  # IncompleteRead (a reply cut off mid-body), BadStatusLine, ...
            raise RetryableError(f"{type(err).__name__}: the reply was cut off or garbled") from None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RetryableError("malformed JSON in the reply") from None

    def delay(self, attempt: int, err: RetryableError) -> float:
        """Seconds before retry ``attempt + 1``: the server's ``Retry-After`` (capped), else the back-off."""
        if err.retry_after_s is not None:
            return min(err.retry_after_s, self.max_retry_after_s)
        return float(self.backoff_s * 2**attempt)

    def post(self, body: dict[str, Any]) -> Any:
        """POST ``body``; retry retryable failures after the server's ``Retry-After`` or delays backoff,
        2·backoff, 4·backoff, …

        Raises:
            InputError: a non-retryable status, or retries exhausted (naming the last failure).
            Cancelled: ``stop`` was set (another request of the job failed) before this one finished.
        """
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            if self.stop.is_set():
                raise Cancelled(self.url)
            try:
                return self.post_once(body)
            except RetryableError as err:
                last = str(err)
                wait_s = self.delay(attempt, err)
            if attempt < self.retries and self.stop.wait(wait_s):
                raise Cancelled(self.url)
        raise InputError(f"http teacher: POST {self.url} failed after {self.retries} retries (last: {last}); "
                         "check the endpoint or raise teacher.http.retries / timeout_s")


T = TypeVar("T")
R = TypeVar("R")


def as_they_arrive(items: list[T], work: Callable[[T], R], concurrency: int, on_failure: Callable[[], None]) \
        -> Iterator[tuple[int, R]]:
    """Run ``work`` on ``items`` ``concurrency`` at a time; yield ``(index, result)`` as each completes. When one
    fails (or the caller stops iterating), ``on_failure`` runs, the queued ones are cancelled and the error is raised.
    """
    todo = iter(enumerate(items))
    with ThreadPoolExecutor(concurrency) as pool:
        running: dict[Future[R], int] = {}

        def submit_next() -> None:
            for i, item in todo:
                running[pool.submit(work, item)] = i
                return

        for _ in range(concurrency):
            submit_next()
        try:
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    i = running.pop(future)
                    result = future.result()
                    submit_next()  # keep `concurrency` requests in flight while the caller stores this one
                    yield i, result
        except BaseException:
            on_failure()
            for future in running:
                future.cancel()
            raise
