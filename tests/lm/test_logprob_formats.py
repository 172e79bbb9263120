"""Every logprobs shape servers send, read into TokenLogprob lists: replies written as the OpenAI API reference,
vLLM's protocol.py and llama.cpp's server README / server-task.cpp show them."""

from __future__ import annotations

import math

import pytest

from edgedistill.lm.logprob_formats import (
    LLAMACPP,
    LLAMACPP_LEGACY,
    NO_LOGPROBS,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    parse_logprobs,
    parse_reply,
    token_text_and_bytes,
)
from edgedistill.lm.records import Candidate, Generation, TokenLogprob


def chat_reply(content: list[dict]) -> dict:
    return {"object": "chat.completion", "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi é"},
                         "logprobs": {"content": content}, "finish_reason": "stop"}]}


def test_openai_chat_with_bytes():
    content = [
        {"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
         "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                          {"token": "Hello", "logprob": -2.5, "bytes": [72, 101, 108, 108, 111]}]},
        {"token": " é", "logprob": -0.7, "bytes": [32, 195, 169], "top_logprobs": []},
    ]
    parsed = parse_reply(chat_reply(content))
    assert parsed.format == OPENAI_CHAT and parsed.text == "Hi é" and parsed.finish_reason == "stop"
    assert parsed.usage == {"prompt_tokens": 9, "completion_tokens": 2}
    assert parsed.tokens == [
        TokenLogprob(Candidate("Hi", -0.1, (72, 105)),
                     (Candidate("Hi", -0.1, (72, 105)), Candidate("Hello", -2.5, (72, 101, 108, 108, 111)))),
        TokenLogprob(Candidate(" é", -0.7, (32, 195, 169)), ()),
    ]


def test_bytes_null_falls_back_to_the_texts_utf8():
    """llama-cpp-python sends ``bytes: null``."""
    parsed = parse_reply(chat_reply([{"token": " é", "logprob": -0.7, "bytes": None,
                                      "top_logprobs": [{"token": " é", "logprob": -0.7, "bytes": None}]}]))
    assert parsed.tokens is not None
    assert parsed.tokens[0].chosen.bytes == (32, 195, 169) == parsed.tokens[0].top[0].bytes


def test_top_is_sorted_best_first():
    parsed = parse_reply(chat_reply([{"token": "a", "logprob": -1.0, "top_logprobs": [
        {"token": "b", "logprob": -3.0}, {"token": "a", "logprob": -1.0}, {"token": "c", "logprob": -0.5}]}]))
    assert parsed.tokens is not None
    assert [c.text for c in parsed.tokens[0].top] == ["c", "a", "b"]


def test_llamacpp_oai_completions_use_content_entries_with_ids():
    """llama.cpp's /v1/completions: ``choices[0].logprobs = {"content": [...]}`` with ``id``; -FLT_MAX is log(0)."""
    reply = {"object": "text_completion", "usage": {"prompt_tokens": 4, "completion_tokens": 1},
             "choices": [{"text": " six", "index": 0, "finish_reason": "length", "logprobs": {"content": [
                 {"id": 4743, "token": " six", "bytes": [32, 115, 105, 120], "logprob": -0.35, "top_logprobs": [
                     {"id": 4743, "token": " six", "bytes": [32, 115, 105, 120], "logprob": -0.35},
                     {"id": 9, "token": "!", "bytes": [33], "logprob": -3.4028234663852886e38}]}]}}]}
    parsed = parse_reply(reply)
    assert parsed.format == OPENAI_CHAT and parsed.text == " six"
    assert parsed.tokens is not None
    chosen, top = parsed.tokens[0].chosen, parsed.tokens[0].top
    assert (chosen.token_id, chosen.logprob, chosen.bytes) == (4743, -0.35, (32, 115, 105, 120))
    assert top[1].token_id == 9 and top[1].logprob == -math.inf


def test_llamacpp_post_sampling_probs():
    """``post_sampling_probs``: ``prob`` / ``top_probs`` hold probabilities, read as their logs."""
    parsed = parse_reply(chat_reply([{"id": 5, "token": "x", "bytes": [120], "prob": 0.25,
                                      "top_probs": [{"id": 5, "token": "x", "bytes": [120], "prob": 0.25},
                                                    {"id": 6, "token": "y", "bytes": [121], "prob": 0.0}]}]))
    assert parsed.tokens is not None
    assert parsed.tokens[0].chosen.logprob == pytest.approx(math.log(0.25))
    assert [c.logprob for c in parsed.tokens[0].top] == [pytest.approx(math.log(0.25)), -math.inf]


def test_legacy_completions_with_echo():
    """OpenAI / vLLM legacy: echoed first token null; OpenAI's ``bytes:\\xNN`` for a partial character; vLLM's
    ``token_id:N``."""
    reply = {"object": "text_completion", "usage": {"prompt_tokens": 2, "completion_tokens": 2}, "choices": [{
        "text": "One two\u00e9", "index": 0, "finish_reason": "length", "logprobs": {
            "tokens": ["One", " two", "bytes:\\xc3", "bytes:\\xa9"],
            "token_logprobs": [None, -1.5, -2.0, -0.01],
            "top_logprobs": [None, {" two": -1.5, " three": -1.2}, {"bytes:\\xc3": -2.0}, {"bytes:\\xa9": -0.01}],
            "text_offset": [0, 3, 7, 7]}}]}
    parsed = parse_reply(reply)
    assert parsed.format == OPENAI_COMPLETIONS and parsed.offsets == [0, 3, 7, 7]
    assert parsed.tokens is not None
    first, two, partial = parsed.tokens[0], parsed.tokens[1], parsed.tokens[2]
    assert math.isnan(first.chosen.logprob) and first.top == ()
    assert two.chosen == Candidate(" two", -1.5, tuple(b" two"))
    assert [(c.text, c.logprob) for c in two.top] == [(" three", -1.2), (" two", -1.5)]
    assert partial.chosen.bytes == (0xC3,) and b"".join(bytes(t.chosen.bytes or b"") for t in parsed.tokens[2:]) \
        == "é".encode()
    vllm, _, _ = parse_logprobs({"tokens": ["token_id:42"], "token_logprobs": [-0.5], "top_logprobs": [None]})
    assert vllm is not None and vllm[0].chosen.token_id == 42


def test_llamacpp_native_completion():
    """llama.cpp's own /completion: ``completion_probabilities`` at the root; usage from tokens_evaluated/predicted."""
    reply = {"content": " Paris", "stop": True, "stop_type": "eos", "tokens_evaluated": 7, "tokens_predicted": 1,
             "completion_probabilities": [{"id": 12, "token": " Paris", "bytes": list(b" Paris"), "logprob": -0.15,
                                           "top_logprobs": [{"id": 12, "token": " Paris", "bytes": list(b" Paris"),
                                                             "logprob": -0.15}]}]}
    parsed = parse_reply(reply)
    assert (parsed.format, parsed.text, parsed.finish_reason) == (LLAMACPP, " Paris", "stop")
    assert parsed.usage == {"prompt_tokens": 7, "completion_tokens": 1}
    assert parsed.tokens is not None and parsed.tokens[0].chosen == Candidate(" Paris", -0.15, tuple(b" Paris"), 12)


def test_llamacpp_before_pr_10783():
    """Old llama.cpp: ``{content, probs: [{tok_str, prob}]}``, partial bytes as ``byte: \\xNN``."""
    reply = {"content": " é", "stop_type": "limit", "completion_probabilities": [
        {"content": " ", "probs": [{"tok_str": " ", "prob": 0.5}, {"tok_str": "a", "prob": 0.25}]},
        {"content": "byte: \\xc3", "probs": [{"tok_str": "byte: \\xc3", "prob": 0.9}]},
        {"content": "byte: \\xa9", "probs": [{"tok_str": "x", "prob": 0.9}]}]}
    parsed = parse_reply(reply)
    assert parsed.format == LLAMACPP_LEGACY and parsed.finish_reason == "length"
    assert parsed.tokens is not None
    assert parsed.tokens[0].chosen.logprob == pytest.approx(math.log(0.5))
    assert [c.logprob for c in parsed.tokens[0].top] == [pytest.approx(math.log(0.5)), pytest.approx(math.log(0.25))]
    assert parsed.tokens[1].chosen.bytes == (0xC3,)
    assert math.isnan(parsed.tokens[2].chosen.logprob)  # the chosen token is not among its listed probs


def test_escapes_only_when_whole():
    assert token_text_and_bytes("bytes:\\xe2\\x80") == ("\ufffd", (0xE2, 0x80))
    assert token_text_and_bytes("bytes: of data") == ("bytes: of data", tuple(b"bytes: of data"))


def test_no_logprobs_and_not_a_completion():
    parsed = parse_reply({"choices": [{"message": {"content": "hi"}, "logprobs": None}]})
    assert parsed.tokens is None and parsed.format == NO_LOGPROBS and parsed.text == "hi"
    with pytest.raises(ValueError, match="no 'choices'"):
        parse_reply({"error": {"message": "nope"}})


def test_generation_json_round_trip():
    """The list ``Generation.as_json`` writes reads back as the same tokens."""
    a, b = Candidate("a", -0.5, (97,), 3), Candidate("b", -1.0, (98,))
    tokens = [TokenLogprob(a, (a, b))]
    doc = Generation(prompt="p", messages=None, response="a", tokens=tokens).as_json()
    parsed, _, _ = parse_logprobs(doc["logprobs"])
    assert parsed == tokens
