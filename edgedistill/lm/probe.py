"""Find out, before any real work, what an OpenAI-compatible endpoint gives: whether answers carry per-token
logprobs (and how many alternatives, in which format), and whether ``/completions`` with ``echo`` scores a given
text correctly (the prompt logprobs on-policy distillation needs).

Three small requests at most, on the text ``One, two, three, four, five``:

1. an answer in the configured api, asking for ``top_logprobs`` (unless ``logprobs: off``); it also proves the URL,
   model and key work (an HTML page, a 404 or a 401 stops here with the URL and status);
2. the text on ``/completions`` with ``echo: true`` and ``logprobs``: the prompt's tokens must come back with logprobs;
3. the same text without ``echo``: its first generated token's distribution is the one after the whole text. If the
   echoed entry of the text's *last* token holds that same distribution, the server's prompt logprobs are shifted by
   one position (llama-cpp-python's ``echo`` does this: entry i comes from the distribution that predicts token i+1),
   so scoring is turned off rather than trusted.

llama.cpp's own server refuses ``echo`` ("Only no echo is supported", HTTP 500); OpenAI's legacy completions cap
``logprobs`` at 5, so a refused echo is asked again with 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgedistill.errors import InputError
from edgedistill.lm.http_endpoint import Endpoint, HttpStatusError
from edgedistill.lm.logprob_formats import NO_LOGPROBS, ParsedReply, parse_reply
from edgedistill.lm.records import TokenLogprob
from edgedistill.lm.usage import UsageMeter
from edgedistill.models.teachers.http_client import RetryableError

PROBE_TEXT = "One, two, three, four, five"
TEXT_ONLY_NOTE = "endpoint returned no logprobs: distilling from text only (SeqKD)"
SAME_DISTRIBUTION_TOL = 1e-3


@dataclass(frozen=True)
class Capabilities:
    """What the endpoint gives. ``top_logprobs``: most alternatives it returned per token; ``format``: the logprobs
    format (:mod:`edgedistill.lm.logprob_formats`); ``echo_scoring``: ``/completions`` + ``echo`` scores a given
    text, aligned (with ``score_top_logprobs`` alternatives); ``notes``: lines for the report."""

    logprobs: bool
    top_logprobs: int
    format: str
    echo_scoring: bool
    notes: list[str] = field(default_factory=list)
    score_top_logprobs: int = 0


def read_reply(endpoint: Endpoint, api: str, reply: Any) -> ParsedReply:
    """:func:`parse_reply`, its failure an InputError naming the URL (and the server's error, if it sent one)."""
    try:
        return parse_reply(reply)
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        said = reply.get("error") if isinstance(reply, dict) else None
        detail = f"; it says: {endpoint.error_text(str(said))[:200]}" if said else ""
        raise InputError(f"http LM teacher: the reply from {endpoint.url(api)} is not a completion ({err}){detail}; "
                         "check that url is the API base ending in /v1") from None


def base_body(endpoint: Endpoint, **fields: Any) -> dict[str, Any]:
    model = {"model": endpoint.cfg.model} if endpoint.cfg.model else {}
    return model | {"temperature": 0.0} | fields


def logprob_fields(api: str, k: int) -> dict[str, Any]:
    """The request fields asking for logprobs: chat ``logprobs: true, top_logprobs: k``; completions ``logprobs: k``."""
    return {"logprobs": True, "top_logprobs": k} if api == "chat" else {"logprobs": k}


def ask(endpoint: Endpoint, api: str, body: dict[str, Any], meter: UsageMeter | None) -> ParsedReply:
    parsed = read_reply(endpoint, api, endpoint.post(api, body))
    if meter is not None:
        meter.add(parsed.usage)
    return parsed


def first_answer(endpoint: Endpoint, k: int | None, meter: UsageMeter | None) -> tuple[ParsedReply, list[str]]:
    """Step 1: an answer on the configured api, asking for ``k`` alternatives (None: no logprobs). A request the
    server refuses only because of the logprobs fields (HTTP 400/422) is asked again without them."""
    api = endpoint.cfg.api
    text = {"messages": [{"role": "user", "content": PROBE_TEXT}]} if api == "chat" else {"prompt": PROBE_TEXT}
    body = base_body(endpoint, max_tokens=2, **text)
    if k is None:
        return ask(endpoint, api, body, meter), []
    try:
        return ask(endpoint, api, body | logprob_fields(api, k), meter), []
    except HttpStatusError as err:
        if err.status not in (400, 422):
            raise
        return ask(endpoint, api, body, meter), [f"endpoint refused logprobs ({err})"]


def char_starts(parsed: ParsedReply) -> list[int]:
    """Each token's character offset: the server's ``text_offset``, else counted from the tokens' bytes."""
    if parsed.offsets is not None:
        return parsed.offsets
    starts, seen = [], b""
    for t in parsed.tokens or []:
        starts.append(len(seen.decode("utf-8", errors="ignore")))
        seen += bytes(t.chosen.bytes or t.chosen.text.encode("utf-8"))
    return starts


def echoed_tokens(parsed: ParsedReply, start: int, end: int) -> list[TokenLogprob]:
    """The tokens of an echoed reply that begin within characters ``[start, end)`` of the prompt."""
    return [t for t, s in zip(parsed.tokens or [], char_starts(parsed)) if start <= s < end]


def echo_reply(endpoint: Endpoint, text: str, k: int, meter: UsageMeter | None) -> tuple[ParsedReply, int]:
    """``text`` scored on ``/completions`` with ``echo``: the reply and the ``k`` it was granted (a 400 for k > 5
    is asked again with 5, OpenAI's legacy cap). Raises HttpStatusError / RetryableError (5xx) when refused."""
    for ask_k in dict.fromkeys((k, min(k, 5))):
        body = base_body(endpoint, prompt=text, echo=True, logprobs=ask_k, max_tokens=1)
        try:
            parsed = read_reply(endpoint, "completions", endpoint.post_no_5xx_retry("completions", body))
        except HttpStatusError as err:
            if err.status != 400 or ask_k <= 5:
                raise
            continue
        if meter is not None:
            meter.add(parsed.usage)
        return parsed, ask_k
    raise AssertionError("unreachable")


def same_distribution(a: TokenLogprob, b: TokenLogprob) -> bool:
    """Whether two entries list the same top-1 token and agree on every alternative both list."""
    if not a.top or not b.top or a.top[0].text != b.top[0].text:
        return False
    left = {c.text: c.logprob for c in a.top}
    return all(abs(left[c.text] - c.logprob) < SAME_DISTRIBUTION_TOL for c in b.top if c.text in left)


def echo_capability(endpoint: Endpoint, k: int, meter: UsageMeter | None) -> tuple[int, str | None]:
    """Steps 2 and 3: the ``k`` echo scoring is granted with (0: none), and a note when it is not."""
    where = f"{endpoint.url('completions')} with echo"
    try:
        echoed, granted = echo_reply(endpoint, PROBE_TEXT, max(k, 1), meter)
    except (HttpStatusError, RetryableError) as err:
        return 0, f"{where} is refused ({err}): no on-policy scoring of student text by this teacher"
    prompt = echoed_tokens(echoed, 0, len(PROBE_TEXT))
    text = b"".join(bytes(t.chosen.bytes or b"") for t in prompt).decode("utf-8", errors="replace")
    if len(prompt) < 2 or text != PROBE_TEXT or all(math.isnan(t.chosen.logprob) for t in prompt[1:]):
        return 0, f"{where} did not return the prompt's logprobs: no on-policy scoring by this teacher"
    plain = ask(endpoint, "completions", base_body(endpoint, prompt=PROBE_TEXT, logprobs=granted, max_tokens=1),
                meter)
    if plain.tokens and same_distribution(prompt[-1], plain.tokens[0]):
        return 0, (f"{where} returns prompt logprobs shifted by one position (entry i holds the distribution "
                   "that predicts token i+1, as llama-cpp-python's echo does): on-policy scoring turned off")
    return granted, None


def probe(endpoint: Endpoint, meter: UsageMeter | None = None) -> Capabilities:
    """What ``endpoint`` gives (see the module docstring); requests are counted in ``meter``.

    Raises:
        InputError: the endpoint cannot be used (HTML, 404, 401, ... with the URL and status), or it returned no
            logprobs while the config says ``logprobs: required``.
    """
    cfg = endpoint.cfg
    parsed, notes = first_answer(endpoint, None if cfg.logprobs == "off" else cfg.top_logprobs, meter)
    if cfg.logprobs == "off":
        return Capabilities(False, 0, NO_LOGPROBS, False, ["logprobs: off: distilling from text only (SeqKD)"])
    if not parsed.tokens:
        if cfg.logprobs == "required":
            raise InputError(f"http LM teacher: {endpoint.url(cfg.api)} returned no logprobs, but logprobs is "
                             "'required'; serve the teacher where logprobs are returned or set logprobs: auto")
        return Capabilities(False, 0, NO_LOGPROBS, False, [*notes, TEXT_ONLY_NOTE])
    top = max(len(t.top) for t in parsed.tokens)
    if top < cfg.top_logprobs:
        notes.append(f"endpoint returns {top} alternatives per token (asked for {cfg.top_logprobs})")
    granted, note = echo_capability(endpoint, cfg.top_logprobs, meter)
    notes += [note] if note else []
    return Capabilities(True, top, parsed.format, granted > 0, notes, granted)
