"""Recorded generations: the plain JSONL form and the OpenAI Batch API output form (prompts matched from the batch
input by custom_id), answers returned in file order, and errors naming path:line and the field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from edgedistill.errors import InputError
from edgedistill.lm.recorded_lm import RecordedLM
from edgedistill.lm.records import Candidate, Generation, TokenLogprob
from edgedistill.lm.teacher_base import GenerationSettings, Prompt

SETTINGS = GenerationSettings()
CHAT = [{"role": "user", "content": "Capital of France?"}]
TOKENS = [TokenLogprob(Candidate(" Paris", -0.25, tuple(b" Paris")),
                       (Candidate(" Paris", -0.25, tuple(b" Paris")), Candidate(" Lyon", -2.0, tuple(b" Lyon"))))]


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def chat_completion(text: str, content: list[dict] | None = None) -> dict:
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if content is not None:
        choice["logprobs"] = {"content": content}
    return {"object": "chat.completion", "choices": [choice],
            "usage": {"prompt_tokens": 12, "completion_tokens": len(content or []), "total_tokens": 13}}


OPENAI_CONTENT = [{"token": " Paris", "logprob": -0.25, "bytes": list(b" Paris"), "top_logprobs": [
    {"token": " Paris", "logprob": -0.25, "bytes": list(b" Paris")}, {"token": " Lyon", "logprob": -2.0}]}]


def test_plain_form_in_file_order(tmp_path: Path):
    own = Generation(prompt=None, messages=CHAT, response=" Paris", tokens=TOKENS, usage={"prompt_tokens": 12,
                                                                                      "completion_tokens": 1})
    path = write_jsonl(tmp_path / "rec.jsonl", [
        own.as_json(),                                                            # Generation.as_json's form
        {"prompt": "2+2=", "response": "4", "logprobs": {"content": OPENAI_CONTENT}},  # OpenAI chat's form
        "",
        {"prompt": "Hi", "response": "Hello!", "finish_reason": "stop"},         # text only
    ])
    lm = RecordedLM(path)
    asked = [Prompt(prompt="Hi"), Prompt(messages=CHAT), Prompt(prompt="2+2=")]
    got = list(lm.generate(asked, SETTINGS))
    assert [i for i, _ in got] == [1, 2, 0]  # file order, each with the index of the prompt asked
    assert got[0][1].tokens == TOKENS and got[0][1].usage == {"prompt_tokens": 12, "completion_tokens": 1}
    assert got[1][1].response == "4" and got[1][1].tokens == TOKENS
    assert got[2][1].tokens is None and got[2][1].finish_reason == "stop"
    assert lm.prompts() == [Prompt(messages=CHAT), Prompt(prompt="2+2="), Prompt(prompt="Hi")]
    assert not lm.logprobs
    assert lm.notes() == ["1 of 3 recorded answers carry no logprobs: those distil from text only (SeqKD)"]
    assert lm.usage() == {"recorded_answers": 3, "prompt_tokens": 12, "completion_tokens": 1}


def test_a_prompt_recorded_twice_gets_its_answers_in_turn(tmp_path: Path):
    path = write_jsonl(tmp_path / "rec.jsonl", [{"prompt": "p", "response": "a"}, {"prompt": "p", "response": "b"}])
    got = list(RecordedLM(path).generate([Prompt(prompt="p"), Prompt(prompt="p")], SETTINGS))
    assert [(i, g.response) for i, g in got] == [(0, "a"), (1, "b")]


def test_batch_api_output_matched_by_custom_id(tmp_path: Path):
    inputs = write_jsonl(tmp_path / "batch_in.jsonl", [
        {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": CHAT, "logprobs": True, "top_logprobs": 2}},
        {"custom_id": "r2", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "prompt": "2+2="}},
        {"custom_id": "r3", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": CHAT}},
    ])
    output = write_jsonl(tmp_path / "batch_out.jsonl", [
        {"id": "b2", "custom_id": "r2", "error": None, "response": {"status_code": 200, "request_id": "x", "body": {
            "object": "text_completion", "choices": [{"index": 0, "text": "4", "finish_reason": "stop",
                                                      "logprobs": None}]}}},
        {"id": "b3", "custom_id": "r3", "response": None, "error": {"code": "server_error", "message": "boom"}},
        {"id": "b1", "custom_id": "r1", "error": None,
         "response": {"status_code": 200, "body": chat_completion(" Paris", OPENAI_CONTENT)}},
        {"id": "b4", "custom_id": "own", "messages": [{"role": "user", "content": "Hi"}], "error": None,
         "response": {"status_code": 200, "body": chat_completion("Hello!")}},
    ])
    lm = RecordedLM(output, batch_input=inputs)
    got = dict(lm.generate([Prompt(messages=CHAT), Prompt(prompt="2+2="),
                            Prompt(messages=[{"role": "user", "content": "Hi"}])], SETTINGS))
    assert got[0].response == " Paris" and got[0].tokens == TOKENS and got[0].usage["prompt_tokens"] == 12
    assert got[1].response == "4" and got[1].tokens is None
    assert got[2].response == "Hello!"
    assert lm.notes()[0] == "1 batch requests failed and were left out (custom_id r3)"
    with pytest.raises(InputError, match="prompt 1 .* has no recorded answer"):  # r3 (the same chat) failed
        list(lm.generate([Prompt(messages=CHAT), Prompt(messages=CHAT)], SETTINGS))


def test_batch_line_without_its_prompt(tmp_path: Path):
    line = {"custom_id": "r9", "response": {"status_code": 200, "body": chat_completion("x")}}
    output = write_jsonl(tmp_path / "out.jsonl", [line])
    with pytest.raises(InputError, match=r"out.jsonl:1: a Batch API output line carries no prompt"):
        RecordedLM(output)
    inputs = write_jsonl(tmp_path / "in.jsonl", [{"custom_id": "r1", "body": {"prompt": "p"}}])
    with pytest.raises(InputError, match=r"out.jsonl:1: custom_id 'r9' is not in the batch input .*in.jsonl"):
        RecordedLM(output, batch_input=inputs)


@pytest.mark.parametrize(("row", "field"), [
    ({"prompt": "p", "answer": "a"}, "'response'"),
    ({"messages_": CHAT, "response": "a"}, "'prompt' or 'messages'"),
])
def test_a_line_missing_the_field(tmp_path: Path, row: dict, field: str):
    path = write_jsonl(tmp_path / "rec.jsonl", [{"prompt": "ok", "response": "fine"}, row])
    with pytest.raises(InputError) as err:
        RecordedLM(path)
    assert f"{path}:2: no {field} field" in str(err.value) and "\n" not in str(err.value)


def test_named_fields(tmp_path: Path):
    path = write_jsonl(tmp_path / "rec.jsonl", [{"question": "q", "answer": "a"}])
    lm = RecordedLM(path, prompt_field="question", response_field="answer")
    assert [g.response for _, g in lm.generate([Prompt(prompt="q")], SETTINGS)] == ["a"]
    with pytest.raises(InputError, match=r"rec.jsonl:1: no 'response' field"):
        RecordedLM(path)


def test_bad_lines_name_path_and_line(tmp_path: Path):
    with pytest.raises(InputError, match=r"rec.jsonl:2: not valid JSON"):
        RecordedLM(write_jsonl(tmp_path / "rec.jsonl", [{"prompt": "p", "response": "r"}, "{oops"]))
    with pytest.raises(InputError, match=r"b.jsonl:1: a JSON list, expected an object"):
        RecordedLM(write_jsonl(tmp_path / "b.jsonl", ["[1, 2]"]))
    with pytest.raises(InputError, match=r"c.jsonl:1: 'logprobs' is in no known format"):
        RecordedLM(write_jsonl(tmp_path / "c.jsonl", [{"prompt": "p", "response": "r", "logprobs": [{"x": 1}]}]))
    with pytest.raises(InputError, match=r"cannot read .*missing.jsonl"):
        RecordedLM(tmp_path / "missing.jsonl")


def test_unrecorded_prompt_is_an_error(tmp_path: Path):
    lm = RecordedLM(write_jsonl(tmp_path / "rec.jsonl", [{"prompt": "p", "response": "r"}]))
    with pytest.raises(InputError, match=r"prompt 1 \('never asked'\) has no recorded answer in .*rec.jsonl"):
        list(lm.generate([Prompt(prompt="p"), Prompt(prompt="never asked")], SETTINGS))


def test_identity_follows_the_contents(tmp_path: Path):
    path = write_jsonl(tmp_path / "rec.jsonl", [{"prompt": "p", "response": "r", "logprobs": [
        {"token": "r", "logprob": -0.5, "top_logprobs": []}]}])
    lm = RecordedLM(path)
    first = lm.identity()
    assert lm.logprobs and lm.notes() == [] and first["source"] == "recorded"
    tokens = next(iter(lm.generate([Prompt(prompt="p")], SETTINGS)))[1].tokens
    assert tokens is not None and math.isclose(tokens[0].chosen.logprob, -0.5)
    write_jsonl(path, [{"prompt": "p", "response": "other"}])
    assert RecordedLM(path).identity() != first
