"""One interface for every generative teacher: given prompts, answer them (text, and per-token log-probabilities
where the teacher offers them).

White-box teachers (a Hugging Face / GGUF model in this process) also expose ``model`` for full logits and hidden
states; black-box ones (an HTTP endpoint, recorded generations) give :class:`Generation` records only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from edgedistill.lm.records import Generation, Messages


@dataclass(frozen=True)
class Prompt:
    """One prompt: plain text (a completion) or chat ``messages`` (the chat template applies)."""

    prompt: str | None = None
    messages: Messages | None = None

    def as_json(self) -> dict[str, Any]:
        return {"messages": self.messages} if self.messages is not None else {"prompt": self.prompt}


@dataclass(frozen=True)
class GenerationSettings:
    """How the teacher answers: at most ``max_new_tokens`` tokens, greedy when ``temperature`` is 0, else sampled
    (``top_p``); ``top_logprobs`` alternatives per token are asked for (0: none)."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    top_logprobs: int = 20
    seed: int = 0


class LMTeacher:
    """Base. ``generate`` yields ``(index, Generation)`` as answers arrive (remote teachers answer out of order)."""

    name = "teacher"
    white_box = False
    logprobs = False  # whether its generations carry per-token log-probabilities
    model: Any = None
    tokenizer: Any = None

    def identity(self) -> dict[str, Any]:
        """What determines the answers (hashed into the cache key). Never includes secrets."""
        raise NotImplementedError

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> Iterator[tuple[int, Generation]]:
        raise NotImplementedError

    def prompts(self) -> list[Prompt]:
        """Prompts the teacher brings itself (a recording's); others need ``data.prompts``."""
        from edgedistill.errors import ConfigError

        raise ConfigError("data.prompts: this teacher has no prompts of its own; give data.prompts")

    def notes(self) -> list[str]:
        """Lines for the report: e.g. that the endpoint refused logprobs and distillation fell back to text."""
        return []

    def usage(self) -> dict[str, Any]:
        """Tokens used (and their cost, when priced) so far; recorded in the manifest."""
        return {}
