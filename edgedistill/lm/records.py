"""What a generative teacher gives back, before and after it is put in the student's tokens.

A :class:`Generation` is what any teacher answers for one prompt: the response text and, where the teacher offers
them, per-token log-probabilities (:class:`TokenLogprob`, the chosen token and its top alternatives, each as text
and bytes, as OpenAI-compatible APIs return them). :class:`SequenceTargets` is the same answer in the student's
tokens: the ids of prompt + response, which positions are response, and the teacher's top-k distribution at each
response position where the teacher's tokens align with the student's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Messages = list[dict[str, str]]  # chat messages: [{"role": "user", "content": "..."}]


@dataclass(frozen=True)
class Candidate:
    """One token the teacher considered at a position: its text, its UTF-8 bytes (None when the API gave none)
    and its log-probability. ``token_id``: the teacher's id, when the teacher shares the student's vocabulary."""

    text: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    token_id: int | None = None


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: the chosen :class:`Candidate` and the top alternatives (best first, chosen included
    when the API lists it)."""

    chosen: Candidate
    top: tuple[Candidate, ...] = ()


@dataclass
class Generation:
    """A teacher's answer to one prompt (a plain ``prompt`` or chat ``messages``)."""

    prompt: str | None
    messages: Messages | None
    response: str
    tokens: list[TokenLogprob] | None = None  # None: text only (no logprobs offered)
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens, completion_tokens

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"response": self.response}
        if self.messages is not None:
            doc["messages"] = self.messages
        else:
            doc["prompt"] = self.prompt
        if self.finish_reason:
            doc["finish_reason"] = self.finish_reason
        if self.usage:
            doc["usage"] = self.usage
        if self.tokens is not None:
            doc["logprobs"] = [token_json(t) for t in self.tokens]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Generation:
        tokens = doc.get("logprobs")
        return cls(prompt=doc.get("prompt"), messages=doc.get("messages"), response=doc["response"],
                   tokens=None if tokens is None else [token_from_json(t) for t in tokens],
                   finish_reason=doc.get("finish_reason"), usage=dict(doc.get("usage") or {}))


def candidate_json(c: Candidate) -> dict[str, Any]:
    doc: dict[str, Any] = {"token": c.text, "logprob": c.logprob}
    if c.bytes is not None:
        doc["bytes"] = list(c.bytes)
    if c.token_id is not None:
        doc["id"] = c.token_id
    return doc


def candidate_from_json(doc: dict[str, Any]) -> Candidate:
    raw = doc.get("bytes")
    return Candidate(text=doc["token"], logprob=float(doc["logprob"]),
                     bytes=None if raw is None else tuple(int(b) for b in raw), token_id=doc.get("id"))


def token_json(t: TokenLogprob) -> dict[str, Any]:
    return candidate_json(t.chosen) | {"top_logprobs": [candidate_json(c) for c in t.top]}


def token_from_json(doc: dict[str, Any]) -> TokenLogprob:
    return TokenLogprob(candidate_from_json(doc), tuple(candidate_from_json(c) for c in doc.get("top_logprobs", [])))


@dataclass
class SequenceTargets:
    """One training sequence in the student's tokens.

    ``input_ids`` (T,): prompt then response; ``response_start``: index of the first response token (losses and
    metrics read positions ``response_start - 1 .. T - 2``, whose next token is a response token);
    ``top_ids`` / ``top_logprobs`` (R, k): the teacher's top-k next-token distribution for each of the R response
    tokens (ids in the student's vocabulary; padding entries have id -1 and logprob -inf), or None when the teacher
    gave text only; ``aligned`` (R,): whether that position's teacher distribution maps onto the student's tokens
    (False where the tokenizations disagree: such positions get the sequence-level loss only).
    """

    input_ids: np.ndarray
    response_start: int
    top_ids: np.ndarray | None = None
    top_logprobs: np.ndarray | None = None
    aligned: np.ndarray | None = None

    @property
    def response_length(self) -> int:
        return int(len(self.input_ids) - self.response_start)
