"""Token usage of a remote teacher, and what it cost: summed over every request (probe and retries' successes
included), thread-safe, priced when the config gives prices per million tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


def cost_usd(prompt_tokens: int, completion_tokens: int, price_input_per_million: float | None,
             price_output_per_million: float | None) -> float:
    """Dollars for the tokens at the given prices per million (an unset price counts as 0)."""
    return (prompt_tokens * (price_input_per_million or 0.0)
            + completion_tokens * (price_output_per_million or 0.0)) / 1e6


@dataclass
class UsageMeter:
    """Running totals of requests and tokens; ``totals()`` adds ``cost_usd`` when a price is set."""

    price_input_per_million: float | None = None
    price_output_per_million: float | None = None
    requests: int = 0
    unreported: int = 0  # replies that carried no usage
    prompt_tokens: int = 0
    completion_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, usage: dict[str, int]) -> None:
        """Count one reply's ``{prompt_tokens, completion_tokens}`` (empty: the server reported none)."""
        with self.lock:
            self.requests += 1
            self.unreported += not usage
            self.prompt_tokens += int(usage.get("prompt_tokens", 0))
            self.completion_tokens += int(usage.get("completion_tokens", 0))

    @property
    def priced(self) -> bool:
        return self.price_input_per_million is not None or self.price_output_per_million is not None

    def totals(self) -> dict[str, Any]:
        with self.lock:
            out: dict[str, Any] = {
                "requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            }
            if self.unreported:
                out["requests_without_usage"] = self.unreported
        if self.priced:
            out["cost_usd"] = round(cost_usd(self.prompt_tokens, self.completion_tokens,
                                             self.price_input_per_million, self.price_output_per_million), 6)
        return out
