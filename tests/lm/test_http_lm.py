"""The HTTP teacher against a real tiny LM behind an OpenAI-compatible test server: the probe on each server's
format, generations and logprobs checked against the model's own torch computation, echo scoring, the fallback
to text only, errors a user can act on (and that never show the key), retries, concurrency, usage and cost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.openai_lm_server import LMServerState, ServedModel, lm_server, one_thread
from support.tiny_lm import make_tiny_lm

from edgedistill.config.http_lm import HttpLMConfig
from edgedistill.errors import InputError
from edgedistill.lm.http_lm import HttpLM
from edgedistill.lm.probe import TEXT_ONLY_NOTE
from edgedistill.lm.records import Generation
from edgedistill.lm.teacher_base import GenerationSettings, Prompt

CHAT = Prompt(messages=[{"role": "user", "content": "What is the capital of France?"}])
PLAIN = Prompt(prompt="def f(x):\n    return")
SETTINGS = GenerationSettings(max_new_tokens=6, top_logprobs=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    return ServedModel(make_tiny_lm(tmp_path_factory.mktemp("lm") / "tiny"))


@pytest.fixture
def server(served: ServedModel) -> Iterator[tuple[LMServerState, str]]:
    state = LMServerState(served)
    with lm_server(state) as url:
        yield state, url


def config(url: str, **fields: object) -> HttpLMConfig:
    settings: dict[str, object] = {"model": "tiny", "top_logprobs": 5, "backoff_s": 0.01} | fields
    return HttpLMConfig(url=url, **settings)  # type: ignore[arg-type]


def reference_rows(served: ServedModel, ids: list[int]):  # (T, V) log-probabilities, computed here with torch
    import torch

    with torch.no_grad(), one_thread():
        return torch.log_softmax(served.model(torch.tensor([ids])).logits[0].double(), -1)


def prompt_ids(served: ServedModel, prompt: Prompt, api: str) -> list[int]:
    tok = served.tokenizer
    messages = prompt.messages or ([{"role": "user", "content": prompt.prompt or ""}] if api == "chat" else None)
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) if messages else prompt.prompt
    return list(tok(str(text), add_special_tokens=False)["input_ids"])


def check_against_torch(served: ServedModel, gen: Generation, prompt: list[int], greedy: bool = True) -> None:
    """Each token: its id (from ``id`` or its bytes), the top-1 of the model's distribution (when ``greedy``), its
    logprob and its alternatives' logprobs equal to the model's own, within 1e-4."""
    assert gen.tokens, "no logprobs"
    id_of = {raw: i for i, raw in enumerate(served.bytes_of)}
    ids = [t.chosen.token_id if t.chosen.token_id is not None else id_of[bytes(t.chosen.bytes or b"")]
           for t in gen.tokens]
    assert b"".join(served.bytes_of[i] for i in ids).decode(errors="replace") == gen.response
    rows = reference_rows(served, prompt + ids)
    for j, (token, tid) in enumerate(zip(gen.tokens, ids)):
        row = rows[len(prompt) + j - 1]
        assert tid == int(row.argmax()) or not greedy
        assert token.chosen.logprob == pytest.approx(float(row[tid]), abs=1e-4)
        top = row.topk(len(token.top))
        assert [id_of[bytes(c.bytes or b"")] for c in token.top] == top.indices.tolist()
        assert [c.logprob for c in token.top] == pytest.approx(top.values.tolist(), abs=1e-4)
    assert gen.usage == {"prompt_tokens": len(prompt), "completion_tokens": len(ids)}


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("fmt", ["openai", "llamacpp"])
def test_generations_and_logprobs_match_torch(served: ServedModel, fmt: str, api: str):
    state = LMServerState(served, format=fmt)
    with lm_server(state) as url:
        lm = HttpLM(config(url, api=api))
        gens = dict(lm.generate([CHAT, PLAIN], SETTINGS))
    assert lm.logprobs and set(gens) == {0, 1}
    check_against_torch(served, gens[0], prompt_ids(served, CHAT, api))
    check_against_torch(served, gens[1], prompt_ids(served, PLAIN, api))
    sent = state.requests[-2:]
    assert {r["path"] for r in sent} == {"/v1/chat/completions"} | ({"/v1/completions"} if api == "completions"
                                                                     else set())
    for r in sent:
        body = r["body"]
        assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"], body["model"]) == \
            (6, 0.0, 1.0, 0, "tiny")
        chat = r["path"].endswith("chat/completions")
        assert (body["logprobs"], body.get("top_logprobs")) == ((True, 5) if chat else (5, None))


def test_sampled_generation_is_seeded(server: tuple[LMServerState, str], served: ServedModel):
    _, url = server
    lm = HttpLM(config(url))
    sampled = GenerationSettings(max_new_tokens=8, temperature=1.0, top_p=0.95, seed=3, top_logprobs=5)
    first, again = (dict(lm.generate([CHAT], sampled))[0] for _ in range(2))
    greedy = dict(lm.generate([CHAT], GenerationSettings(max_new_tokens=8, top_logprobs=5)))[0]
    assert first == again and first.response != greedy.response
    check_against_torch(served, first, prompt_ids(served, CHAT, "chat"), greedy=False)


def test_rps_spaces_the_requests(server: tuple[LMServerState, str]):
    state, url = server
    lm = HttpLM(config(url, rps=20.0))
    before = len(state.times)
    list(lm.generate([Prompt(prompt=f"p{i}") for i in range(5)], GenerationSettings(max_new_tokens=1)))
    times = state.times[before:]
    assert min(b - a for a, b in zip(times, times[1:])) > 0.04  # 1/20 s apart, give or take the clock


@pytest.mark.parametrize(("fmt", "api", "fmt_name", "echo"), [
    ("openai", "chat", "openai-chat", True), ("openai", "completions", "openai-completions", True),
    ("llamacpp", "chat", "openai-chat", False), ("llamacpp", "completions", "openai-chat", False),
    ("llama-cpp-python", "chat", "openai-chat", False)])
def test_probe(served: ServedModel, fmt: str, api: str, fmt_name: str, echo: bool):
    state = LMServerState(served, format=fmt)
    with lm_server(state) as url:
        caps = HttpLM(config(url, api=api)).capabilities
    assert (caps.logprobs, caps.top_logprobs, caps.format, caps.echo_scoring) == (True, 5, fmt_name, echo)
    if fmt == "openai":
        assert caps.notes == []
    elif fmt == "llamacpp":
        assert len(caps.notes) == 1 and "HTTP 500: Only no echo is supported" in caps.notes[0]
    else:  # llama-cpp-python: the echoed prompt logprobs are one position off; found, not trusted
        assert len(caps.notes) == 1 and "shifted by one position" in caps.notes[0]


def test_score_matches_torch(server: tuple[LMServerState, str], served: ServedModel):
    state, url = server
    lm = HttpLM(config(url))
    scored = lm.score("Hello,", " world! 123")
    assert scored is not None and state.requests[-1]["body"]["echo"] is True
    ids = list(served.tokenizer("Hello, world! 123", add_special_tokens=False)["input_ids"])
    starts = [len(b"".join(served.bytes_of[i] for i in ids[:p]).decode()) for p in range(len(ids))]
    response = [p for p, s in enumerate(starts) if s >= len("Hello,")]
    assert b"".join(bytes(t.chosen.bytes or b"") for t in scored) == b" world! 123"
    rows = reference_rows(served, ids)
    assert [t.chosen.logprob for t in scored] == pytest.approx([float(rows[p - 1, ids[p]]) for p in response],
                                                              abs=1e-4)
    assert [t.top[0].logprob for t in scored] == pytest.approx([float(rows[p - 1].max()) for p in response], abs=1e-4)


def test_score_is_none_without_echo(served: ServedModel):
    with lm_server(LMServerState(served, format="llamacpp")) as url:
        assert HttpLM(config(url)).score("Hello,", " world!") is None


def test_text_only_fallback_with_a_note(served: ServedModel):
    state = LMServerState(served, no_logprobs=True)
    with lm_server(state) as url:
        lm = HttpLM(config(url))
        gens = dict(lm.generate([CHAT, PLAIN], SETTINGS))
    assert not lm.logprobs and lm.notes() == [TEXT_ONLY_NOTE]
    assert all(g.tokens is None and g.response for g in gens.values())
    assert all("logprobs" not in r["body"] for r in state.requests[-2:])  # not asked again
    assert lm.score("a", "b") is None


def test_refused_logprobs_fall_back_to_text(served: ServedModel):
    with lm_server(LMServerState(served, refuse_logprobs=True)) as url:
        lm = HttpLM(config(url))
        gens = dict(lm.generate([CHAT], SETTINGS))
    assert not lm.logprobs and gens[0].tokens is None and gens[0].response
    assert len(lm.notes()) == 2 and "HTTP 400" in lm.notes()[0] and lm.notes()[1] == TEXT_ONLY_NOTE


def test_echo_asks_again_within_openais_legacy_cap(served: ServedModel):
    state = LMServerState(served, completions_logprobs_cap=5)
    with lm_server(state) as url:
        lm = HttpLM(config(url, top_logprobs=8))
        scored = lm.score("Hello,", " world!")
    assert lm.capabilities.echo_scoring and lm.capabilities.score_top_logprobs == 5
    assert scored and state.requests[-1]["body"]["logprobs"] == 5
    assert all(len(t.top) in (5, 6) for t in scored)  # the top 5, and the chosen token when it is not among them


def test_required_logprobs_stop_with_one_line(served: ServedModel):
    with lm_server(LMServerState(served, no_logprobs=True)) as url, pytest.raises(InputError) as err:
        HttpLM(config(url, logprobs="required"))
    message = str(err.value)
    assert "\n" not in message and f"{url}/chat/completions" in message and "required" in message


def test_logprobs_off_never_asks(server: tuple[LMServerState, str]):
    state, url = server
    lm = HttpLM(config(url, logprobs="off"))
    list(lm.generate([CHAT], SETTINGS))
    assert not lm.logprobs and len(state.requests) == 2
    assert all("logprobs" not in r["body"] for r in state.requests)


SECRET = "sk-test-SECRET-0123456789"


@pytest.mark.parametrize(("case", "expect"), [
    ("no /v1", ["HTTP 404", "(an HTML page)", "ending in /v1"]),
    ("html", ["HTTP 200 with an HTML page", "ending in /v1"]),
    ("unknown model", ["HTTP 404", "The model `nope` does not exist", "model 'nope'"]),
    ("wrong key", ["HTTP 401", "$LM_TEST_KEY"]),
])
def test_errors_show_url_and_status_never_the_key(served: ServedModel, monkeypatch: pytest.MonkeyPatch, case: str,
                                                  expect: list[str]):
    monkeypatch.setenv("LM_TEST_KEY", SECRET)
    state = LMServerState(served, api_key="the-right-key" if case == "wrong key" else None,
                          script=["html"] if case == "html" else [])
    with lm_server(state) as url, pytest.raises(InputError) as err:
        base = url.removesuffix("/v1") if case == "no /v1" else url
        HttpLM(HttpLMConfig(url=base, model="nope" if case == "unknown model" else "tiny", api_key_env="LM_TEST_KEY",
                            backoff_s=0.01))
    message = str(err.value)
    assert f"{base}/chat/completions" in message and "\n" not in message
    assert all(e in message for e in expect), message
    assert SECRET not in message and "SECRET" not in repr(err.value.__context__)
    if case != "no /v1":  # (the server's 404 page for an unknown path records nothing)
        assert state.requests[0]["auth"] == f"Bearer {SECRET}"  # it was sent, only in the header


def test_key_is_never_in_identity_or_notes(served: ServedModel, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LM_TEST_KEY", SECRET)
    with lm_server(LMServerState(served, api_key=SECRET)) as url:
        lm = HttpLM(config(url, api_key_env="LM_TEST_KEY"))
    assert lm.identity() == {"source": "http", "url": url, "api": "chat", "model": "tiny", "top_logprobs": 5}
    assert SECRET not in repr(lm.identity()) + repr(lm.notes()) + repr(lm.usage())


def test_retries_on_429_500_cut_and_timeouts(server: tuple[LMServerState, str], served: ServedModel):
    state, url = server
    lm = HttpLM(config(url, timeout_s=0.3, concurrency=1))
    clean = dict(lm.generate([CHAT], SETTINGS))[0]
    before = len(state.requests)
    state.script = ["429 retry-after=0", "500", "cut", "timeout", "malformed"]
    state.slow_s = 0.6
    again = dict(lm.generate([CHAT], SETTINGS))[0]
    assert len(state.requests) - before == 6 and again == clean
    check_against_torch(served, again, prompt_ids(served, CHAT, "chat"))


def test_a_failed_request_stops_the_others(server: tuple[LMServerState, str]):
    state, url = server
    lm = HttpLM(config(url, retries=1, concurrency=2))
    before = len(state.requests)
    state.script = ["500"] * 100
    prompts = [Prompt(prompt=f"prompt {i}") for i in range(20)]
    with pytest.raises(InputError, match="failed after 1 retries"):
        list(lm.generate(prompts, SETTINGS))
    time.sleep(0.1)
    assert len(state.requests) - before < 10  # not 40: the job stopped at the first failure


def timed_run(url: str, concurrency: int, prompts: list[Prompt]) -> float:
    lm = HttpLM(config(url, concurrency=concurrency))
    start = time.perf_counter()
    assert len(dict(lm.generate(prompts, GenerationSettings(max_new_tokens=2, top_logprobs=5)))) == len(prompts)
    return time.perf_counter() - start


def test_concurrency_multiplies_throughput(served: ServedModel):
    state = LMServerState(served)
    prompts = [Prompt(prompt=f"Count {i}:") for i in range(24)]
    with lm_server(state) as url:
        timed_run(url, 8, prompts)  # warm the server's model cache: the timing measures the requests
        state.latency_s = 0.02
        serial, parallel = timed_run(url, 1, prompts), timed_run(url, 8, prompts)
    ratio = serial / parallel
    print(f"\nconcurrency 8 vs 1 against a 20 ms server: {serial:.3f} s vs {parallel:.3f} s, {ratio:.1f}x")
    assert ratio >= 4


def test_usage_and_cost(server: tuple[LMServerState, str]):
    state, url = server
    lm = HttpLM(config(url, price_input_per_million=2.0, price_output_per_million=8.0))
    gens = dict(lm.generate([CHAT, PLAIN], SETTINGS))
    lm.score("Hello,", " world!")
    prompt = sum(u["prompt_tokens"] for u in state.served)
    completion = sum(u["completion_tokens"] for u in state.served)
    assert lm.usage() == {"requests": len(state.served), "prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion,
                          "cost_usd": pytest.approx((prompt * 2.0 + completion * 8.0) / 1e6)}
    assert sum(g.usage["completion_tokens"] for g in gens.values()) == sum(len(g.tokens or []) for g in gens.values())


def test_unpriced_usage_has_no_cost(server: tuple[LMServerState, str]):
    _, url = server
    assert "cost_usd" not in HttpLM(config(url)).usage()


def test_concurrent_answers_arrive_as_they_complete(server: tuple[LMServerState, str]):
    """Arrival times: with concurrency 4 and 100 ms latency the first four requests arrive together."""
    state, url = server
    lm = HttpLM(config(url, concurrency=4))
    state.latency_s = 0.1
    before = len(state.times)
    got = [i for i, _ in lm.generate([Prompt(prompt=f"p{i}") for i in range(8)], SETTINGS)]
    assert sorted(got) == list(range(8))
    first = state.times[before: before + 4]
    assert max(first) - min(first) < 0.05


def test_config_rejects_a_non_http_url():
    with pytest.raises(ValueError, match="http:// or https://"):
        HttpLMConfig(url="ftp://host/v1")
    assert HttpLMConfig(url="http://h:8080/v1/").url == "http://h:8080/v1"


def test_unset_key_variable_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from edgedistill.errors import ConfigError

    monkeypatch.delenv("LM_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match="LM_TEST_UNSET is not set"):
        HttpLM(HttpLMConfig(url="http://127.0.0.1:9/v1", api_key_env="LM_TEST_UNSET"))
