"""Every shape in which OpenAI-compatible servers return per-token log-probabilities, read into
:class:`~edgedistill.lm.records.TokenLogprob` lists.

Formats (the name :func:`parse_reply` reports):

``openai-chat``
    ``choices[0].logprobs.content[] = {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}``: OpenAI chat
    completions (API reference, "The chat completion object"), vLLM chat (``ChatCompletionLogProbsContent`` in
    ``vllm/entrypoints/openai/protocol.py``), llama-cpp-python chat (``bytes`` null), and llama.cpp's server for both
    ``/v1/chat/completions`` and ``/v1/completions`` (``to_json_oaicompat*`` in ``tools/server/server-task.cpp``:
    each entry also has the token ``id``; with ``post_sampling_probs`` the keys are ``prob`` / ``top_probs`` and hold
    probabilities; a probability of 0 is sent as ``logprob = -FLT_MAX`` because JSON has no -inf).
``openai-completions``
    ``choices[0].logprobs = {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}``: OpenAI's
    legacy completions and vLLM's (``CompletionLogProbs``). With ``echo`` the first prompt token's logprob and top
    are null. OpenAI writes a token that is not whole UTF-8 as ``bytes:\\xe2\\x80``; vLLM with
    ``return_tokens_as_token_ids`` writes ``token_id:123``.
``llamacpp``
    llama.cpp's own ``/completion`` endpoint: ``completion_probabilities[] = {id, token, bytes, logprob,
    top_logprobs: [{id, token, bytes, logprob}]}`` (``prob`` / ``top_probs`` with ``post_sampling_probs``),
    as in ``tools/server/README.md`` since PR #10783 (Dec 2024).
``llamacpp-legacy``
    llama.cpp before that PR: ``completion_probabilities[] = {content, probs: [{tok_str, prob}]}``, probabilities
    not logs, a byte that is not whole UTF-8 written ``byte: \\xe2``.

A token's bytes are the ``bytes`` the server gives, else the UTF-8 of its text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from edgedistill.lm.records import Candidate, TokenLogprob

OPENAI_CHAT = "openai-chat"
OPENAI_COMPLETIONS = "openai-completions"
LLAMACPP = "llamacpp"
LLAMACPP_LEGACY = "llamacpp-legacy"
NO_LOGPROBS = "none"

LOWEST_FINITE = -1e30  # llama.cpp sends -FLT_MAX (-3.4e38) for log(0); read it as -inf
_HEX_BYTE = re.compile(r"\\x([0-9a-fA-F]{2})")
_HEX_BYTES = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class ParsedReply:
    """One completion reply, whatever the server: the text, its tokens with logprobs (None when the reply has none),
    the logprobs ``format``, ``offsets`` (each token's character offset, when the server gives ``text_offset``),
    the finish reason and the token usage."""

    text: str
    tokens: list[TokenLogprob] | None
    format: str
    offsets: list[int] | None = None
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


def as_logprob(value: Any, is_prob: bool = False) -> float:
    """A logprob (or a probability, ``is_prob``) from JSON as a float: null → NaN (unknown), -FLT_MAX → -inf."""
    if value is None:
        return math.nan
    x = float(value)
    if is_prob:
        return math.log(x) if x > 0 else -math.inf
    return -math.inf if x <= LOWEST_FINITE else x


def token_text_and_bytes(token: str) -> tuple[str, tuple[int, ...]]:
    """A token string as text and bytes, reading the escapes servers use for tokens that are not whole UTF-8:
    OpenAI's ``bytes:\\xe2\\x80`` and old llama.cpp's ``byte: \\xe2``."""
    for prefix in ("bytes:", "byte: "):
        rest = token[len(prefix):]
        if token.startswith(prefix) and _HEX_BYTES.fullmatch(rest):
            raw = bytes(int(h, 16) for h in _HEX_BYTE.findall(rest))
            return raw.decode("utf-8", errors="replace"), tuple(raw)
    return token, tuple(token.encode("utf-8"))


def make_candidate(text: str, logprob: float, raw_bytes: Any = None, token_id: Any = None) -> Candidate:
    """A :class:`Candidate`; ``raw_bytes`` when the server gave them, else from the text (and its escapes)."""
    if token_id is None and text.startswith("token_id:") and text[9:].isdigit():  # vLLM return_tokens_as_token_ids
        return Candidate(text=text, logprob=logprob, bytes=None, token_id=int(text[9:]))
    shown, derived = token_text_and_bytes(text)
    got = tuple(int(b) for b in raw_bytes) if raw_bytes is not None else derived
    return Candidate(text=shown, logprob=logprob, bytes=got, token_id=None if token_id is None else int(token_id))


def entry_candidate(doc: dict[str, Any]) -> Candidate:
    """``{token, logprob | prob, bytes?, id?}`` (OpenAI, vLLM, llama.cpp) as a :class:`Candidate`."""
    is_prob = "logprob" not in doc and "prob" in doc
    value = doc.get("prob") if is_prob else doc.get("logprob")
    return make_candidate(str(doc["token"]), as_logprob(value, is_prob), doc.get("bytes"), doc.get("id"))


def best_first(cands: list[Candidate]) -> tuple[Candidate, ...]:
    return tuple(sorted(cands, key=lambda c: -c.logprob if not math.isnan(c.logprob) else math.inf))


def parse_content(entries: list[dict[str, Any]]) -> list[TokenLogprob]:
    """``logprobs.content[]`` (``openai-chat``) or llama.cpp's ``completion_probabilities[]`` (``llamacpp``)."""
    out = []
    for doc in entries:
        top = doc.get("top_logprobs", doc.get("top_probs")) or []
        out.append(TokenLogprob(entry_candidate(doc), best_first([entry_candidate(t) for t in top])))
    return out


def parse_legacy(logprobs: dict[str, Any]) -> tuple[list[TokenLogprob], list[int] | None]:
    """``{tokens, token_logprobs, top_logprobs, text_offset}`` (``openai-completions``); also the offsets."""
    tokens = logprobs.get("tokens") or []
    values = logprobs.get("token_logprobs") or [None] * len(tokens)
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    out = []
    for text, value, top in zip(tokens, values, tops):
        alts = [make_candidate(str(t), as_logprob(lp)) for t, lp in (top or {}).items()]
        out.append(TokenLogprob(make_candidate(str(text), as_logprob(value)), best_first(alts)))
    offsets = logprobs.get("text_offset")
    return out, [int(o) for o in offsets] if offsets and len(offsets) == len(out) else None


def parse_llamacpp_legacy(entries: list[dict[str, Any]]) -> list[TokenLogprob]:
    """``completion_probabilities[] = {content, probs: [{tok_str, prob}]}`` (``llamacpp-legacy``). The chosen
    token's probability is read from ``probs`` when listed there (else NaN: the old server did not send it)."""
    out = []
    for doc in entries:
        alts = [make_candidate(str(p["tok_str"]), as_logprob(p.get("prob"), is_prob=True)) for p in doc["probs"]]
        chosen_text = str(doc["content"])
        value = next((c.logprob for c, p in zip(alts, doc["probs"]) if p["tok_str"] == chosen_text), math.nan)
        out.append(TokenLogprob(make_candidate(chosen_text, value), best_first(alts)))
    return out


def parse_logprobs(node: Any) -> tuple[list[TokenLogprob] | None, str, list[int] | None]:
    """A ``logprobs`` / ``completion_probabilities`` node in any format: ``(tokens, format, offsets)``;
    ``(None, "none", None)`` when it is absent or empty."""
    if isinstance(node, dict) and isinstance(node.get("content"), list):
        return parse_content(node["content"]) or None, OPENAI_CHAT, None
    if isinstance(node, dict) and isinstance(node.get("tokens"), list):
        tokens, offsets = parse_legacy(node)
        return tokens or None, OPENAI_COMPLETIONS, offsets
    if isinstance(node, list) and node:
        if "probs" in node[0] and "token" not in node[0]:
            return parse_llamacpp_legacy(node), LLAMACPP_LEGACY, None
        return parse_content(node), LLAMACPP, None
    return None, NO_LOGPROBS, None


def reply_usage(reply: dict[str, Any]) -> dict[str, int]:
    """Prompt and completion tokens: OpenAI's ``usage``, or llama.cpp's ``tokens_evaluated`` / ``tokens_predicted``."""
    usage = reply.get("usage")
    if isinstance(usage, dict):
        return {k: int(usage[k]) for k in ("prompt_tokens", "completion_tokens") if usage.get(k) is not None}
    if "tokens_evaluated" in reply or "tokens_predicted" in reply:
        return {"prompt_tokens": int(reply.get("tokens_evaluated") or 0),
                "completion_tokens": int(reply.get("tokens_predicted") or 0)}
    return {}


def parse_reply(reply: Any) -> ParsedReply:
    """A chat completion, a (legacy) completion, or llama.cpp's native ``/completion`` reply.

    Raises:
        ValueError: the reply is none of these (no ``choices`` and no ``content``).
    """
    if not isinstance(reply, dict):
        raise ValueError(f"the reply is a JSON {type(reply).__name__}, not an object")
    choices = reply.get("choices")
    if isinstance(choices, list) and choices:
        choice = choices[0]
        message = choice.get("message")
        text = (message or {}).get("content") if isinstance(message, dict) else choice.get("text")
        tokens, fmt, offsets = parse_logprobs(choice.get("logprobs"))
        return ParsedReply(text or "", tokens, fmt, offsets, choice.get("finish_reason"), reply_usage(reply))
    if "content" in reply:  # llama.cpp's /completion
        tokens, fmt, offsets = parse_logprobs(reply.get("completion_probabilities"))
        stop = {"eos": "stop", "word": "stop", "limit": "length"}.get(str(reply.get("stop_type")))
        return ParsedReply(str(reply["content"]), tokens, fmt, offsets, stop, reply_usage(reply))
    raise ValueError("the reply has no 'choices' (nor llama.cpp's 'content')")
