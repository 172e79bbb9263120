"""A generative teacher behind an OpenAI-compatible HTTP API: OpenAI, vLLM, llama.cpp's server, llama-cpp-python.

At start, :func:`~edgedistill.lm.probe.probe` finds out what the endpoint gives (logprobs and their format, echo
scoring). ``generate`` then sends ``concurrency`` requests at a time and yields each answer as it arrives, so a
labelling job stores it at once; once one request fails for good the others stop retrying and nothing more is sent.
Chat prompts go to ``/chat/completions`` as ``messages``; plain prompts to ``/completions`` as ``prompt`` (with
``api: chat``, to the chat endpoint as one user message). Token usage is summed per answer and in total, priced when
the config gives prices. The API key appears only in the ``Authorization`` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edgedistill.config.http_lm import HttpLMConfig
from edgedistill.lm.http_endpoint import Endpoint
from edgedistill.lm.probe import Capabilities, ask, base_body, echoed_tokens, logprob_fields, probe
from edgedistill.lm.records import Generation, TokenLogprob
from edgedistill.lm.teacher_base import GenerationSettings, LMTeacher, Prompt
from edgedistill.lm.usage import UsageMeter
from edgedistill.models.teachers.http_client import as_they_arrive


def route(prompt: Prompt, api: str) -> tuple[str, dict[str, Any]]:
    """Which endpoint a prompt goes to, and its prompt fields."""
    if prompt.messages is not None:
        return "chat", {"messages": prompt.messages}
    if api == "chat":
        return "chat", {"messages": [{"role": "user", "content": prompt.prompt or ""}]}
    return "completions", {"prompt": prompt.prompt or ""}


class HttpLM(LMTeacher):
    """A black-box teacher answering over HTTP; see the module docstring.

    Raises (at construction, from the probe): InputError when the endpoint cannot be used, ConfigError when
    ``api_key_env`` names an unset variable.
    """

    name = "http"

    def __init__(self, cfg: HttpLMConfig):
        self.cfg = cfg
        self.endpoint = Endpoint(cfg)
        self.meter = UsageMeter(cfg.price_input_per_million, cfg.price_output_per_million)
        self.capabilities: Capabilities = probe(self.endpoint, self.meter)
        self.logprobs = self.capabilities.logprobs

    def identity(self) -> dict[str, Any]:
        c = self.cfg
        return {"source": "http", "url": c.url, "api": c.api, "model": c.model, "top_logprobs": c.top_logprobs}

    def notes(self) -> list[str]:
        return list(self.capabilities.notes)

    def usage(self) -> dict[str, Any]:
        return self.meter.totals()

    def request(self, prompt: Prompt, settings: GenerationSettings) -> tuple[str, dict[str, Any]]:
        """The endpoint and JSON body for one prompt."""
        api, fields = route(prompt, self.cfg.api)
        body = base_body(self.endpoint, **fields, max_tokens=settings.max_new_tokens,
                         temperature=settings.temperature, top_p=settings.top_p, seed=settings.seed)
        if self.logprobs:
            body |= logprob_fields(api, min(settings.top_logprobs, self.cfg.top_logprobs))
        return api, body

    def answer(self, prompt: Prompt, settings: GenerationSettings) -> Generation:
        api, body = self.request(prompt, settings)
        parsed = ask(self.endpoint, api, body, self.meter)
        return Generation(prompt=prompt.prompt, messages=prompt.messages, response=parsed.text,
                          tokens=parsed.tokens if self.logprobs else None, finish_reason=parsed.finish_reason,
                          usage=parsed.usage)

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> Iterator[tuple[int, Generation]]:
        """Answer ``prompts`` ``concurrency`` at a time; yield ``(index, Generation)`` as each arrives.

        Raises:
            InputError: a request failed for good; those in flight stop retrying and no other is sent.
        """
        self.endpoint.stop.clear()
        yield from as_they_arrive(prompts, lambda p: self.answer(p, settings), self.cfg.concurrency,
                                  self.endpoint.stop.set)

    def score(self, prompt_text: str, response_text: str) -> list[TokenLogprob] | None:
        """The teacher's logprobs for ``response_text`` following ``prompt_text`` (plain text, the chat template
        already applied), via ``/completions`` with ``echo``; None when the probe found echo scoring unavailable.
        A token straddling the prompt/response boundary belongs to the prompt (it is not returned)."""
        if not self.capabilities.echo_scoring:
            return None
        full = prompt_text + response_text
        body = base_body(self.endpoint, prompt=full, echo=True, logprobs=self.capabilities.score_top_logprobs,
                         max_tokens=1)
        parsed = ask(self.endpoint, "completions", body, self.meter)
        return echoed_tokens(parsed, len(prompt_text), len(full))
