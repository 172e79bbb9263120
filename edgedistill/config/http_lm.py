"""A generative teacher behind an OpenAI-compatible HTTP API (OpenAI, vLLM, llama.cpp server, llama-cpp-python)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from edgedistill.config.base import PositiveInt, StrictModel


class HttpLMConfig(StrictModel):
    """Where the teacher answers, how to ask it, and how hard to push it.

    Chat prompts go to ``{url}/chat/completions``; plain prompts go to ``{url}/completions`` (or, with
    ``api: chat``, to the chat endpoint as one user message). The API key is read from the environment
    variable ``api_key_env`` names and sent as ``Authorization: Bearer``; it is never logged, stored or shown.
    """

    url: str = Field(description="API base URL ending in `/v1`, e.g. `http://127.0.0.1:8080/v1`.")
    api: Literal["chat", "completions"] = Field(
        "chat", description="Where plain prompts go: `chat` (as one user message) or `completions` (as `prompt`); "
        "chat prompts always go to `/chat/completions`.")
    model: str | None = Field(None, description="`model` field sent with every request (none: the server's own).")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (never logged).")
    logprobs: Literal["auto", "required", "off"] = Field(
        "auto", description="Per-token log-probabilities: `auto` uses them when the endpoint returns them (else "
        "distils from text only), `required` stops with an error when it does not, `off` never asks.")
    top_logprobs: int = Field(20, ge=0, le=20, description="Alternatives asked for per token (OpenAI allows 0-20).")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout (a generation can take a while).")
    retries: int = Field(5, ge=0, description="Retries on timeouts, 429, 5xx and cut-off or malformed replies.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry.")
    max_retry_after_s: float = Field(60.0, ge=0, description="Longest wait a server's `Retry-After` (seconds or "
                                     "HTTP date, on 429/503) is honoured for; longer asks are waited this long.")
    concurrency: PositiveInt = Field(8, description="Requests in flight at once.")
    rps: float | None = Field(None, gt=0, description="Requests per second at most (none: unlimited).")
    price_input_per_million: float | None = Field(
        None, ge=0, description="US dollars per million prompt tokens, for the cost in the manifest (none: unpriced).")
    price_output_per_million: float | None = Field(
        None, ge=0, description="US dollars per million generated tokens (none: unpriced).")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got '{v}'")
        return v.rstrip("/")
