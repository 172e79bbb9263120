"""Teachers behind one interface: HTTP (with injected failures), recorded outputs, ONNX, and the label store."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from support.http_server import ServerState, teacher_server, vector

from edgedistill.config import HttpTeacherConfig
from edgedistill.distill.label_store import LabelStore
from edgedistill.errors import ConfigError, InputError
from edgedistill.models.teachers.base import Teacher
from edgedistill.models.teachers.http_client import RateLimiter
from edgedistill.models.teachers.http_teacher import HttpTeacher, at_path
from edgedistill.models.teachers.recorded import RecordedTeacher

TEXTS = ["a man plays", "the dog runs in the park", "red car", "a b c d e", "python"]
SECRET = "sk-test-not-a-real-key-123"


def expected(texts):
    return np.array([vector(t) for t in texts], dtype=np.float32)


def http_cfg(url, **kw):
    base = {"url": url + "/v1/embeddings", "model": "m", "dim": 3, "timeout_s": 0.2, "retries": 3,
            "backoff_s": 0.01, "batch_size": 2}
    return HttpTeacherConfig(**{**base, **kw})


def test_openai_embeddings_with_key_from_env(monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", SECRET)
    state = ServerState()
    with teacher_server(state) as url:
        teacher = HttpTeacher(http_cfg(url, api_key_env="TEACHER_KEY"))
        np.testing.assert_array_equal(teacher.outputs(TEXTS, batch_size=2), expected(TEXTS))
    assert state.requests[0]["auth"] == f"Bearer {SECRET}"
    assert state.requests[0]["body"]["model"] == "m"
    assert SECRET not in json.dumps(teacher.identity())


def test_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable NO_SUCH_KEY is not set"):
        HttpTeacher(http_cfg("http://127.0.0.1:1", api_key_env="NO_SUCH_KEY"))


def test_retries_timeouts_500_429_and_malformed_json():
    state = ServerState(script=["500", "429", "malformed", "timeout"])
    with teacher_server(state) as url:
        out = HttpTeacher(http_cfg(url, concurrency=1, retries=4)).run(TEXTS[:2])
    np.testing.assert_array_equal(out, expected(TEXTS[:2]))
    assert len(state.requests) == 5  # four failures, then the answer


def test_retries_exhausted_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("TEACHER_KEY", SECRET)
    state = ServerState(script=["500"] * 10)
    with teacher_server(state) as url, pytest.raises(InputError) as err:
        HttpTeacher(http_cfg(url, retries=2, api_key_env="TEACHER_KEY")).run(TEXTS[:2])
    assert "failed after 2 retries (last: HTTP 500)" in str(err.value) and SECRET not in str(err.value)
    assert len(state.requests) == 3


def test_backoff_doubles():
    state = ServerState(script=["503", "503", "503"])
    with teacher_server(state) as url:
        start = time.perf_counter()
        HttpTeacher(http_cfg(url, backoff_s=0.05)).run(TEXTS[:1])
    assert time.perf_counter() - start >= 0.05 + 0.1 + 0.2


def test_wrong_vector_size_and_count_rejected():
    with teacher_server(ServerState()) as url, pytest.raises(InputError, match="width 3, but teacher.http.dim is 4"):
        HttpTeacher(http_cfg(url, dim=4)).run(TEXTS[:2])
    with teacher_server(ServerState(script=["short"])) as url, pytest.raises(InputError, match=r"3\), expected 2xD"):
        HttpTeacher(http_cfg(url)).run(TEXTS[:2])


def test_generic_json_with_response_path():
    state = ServerState()
    with teacher_server(state) as url:
        cfg = HttpTeacherConfig(url=url + "/score", api="json", input_field="inputs", response_path="result.logits")
        np.testing.assert_array_equal(HttpTeacher(cfg).run(TEXTS), expected(TEXTS))
    assert state.requests[0]["body"] == {"inputs": TEXTS}
    assert at_path({"a": [{"b": 7}]}, "a.0.b") == 7


def test_concurrency_limit_and_rps_limit():
    state = ServerState(latency_s=0.05)
    with teacher_server(state) as url:
        teacher = HttpTeacher(http_cfg(url, batch_size=1, concurrency=4))
        start = time.perf_counter()
        teacher.outputs(TEXTS[:4] * 2, batch_size=1)  # 8 requests, 4 at a time: ~2 rounds of 50 ms
        assert time.perf_counter() - start < 0.3
    limiter, start = RateLimiter(rps=50), time.perf_counter()
    for _ in range(6):
        limiter.wait()
    assert time.perf_counter() - start >= 5 / 50 * 0.9


def test_recorded_jsonl_and_npz_check_inputs_match(tmp_path):
    rows = [{"input": t, "output": vector(t)} for t in TEXTS]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    np.savez(tmp_path / "log.npz", input=np.array(TEXTS), output=expected(TEXTS))
    for name in ("log.jsonl", "log.npz"):
        teacher = RecordedTeacher(tmp_path / name)
        np.testing.assert_array_equal(teacher.run(TEXTS[::-1]), expected(TEXTS[::-1]))
        with pytest.raises(InputError, match="do not match the dataset: 1 of 2 inputs have no record, e.g. 'zebra'"):
            teacher.run(["zebra", TEXTS[0]])


def test_recorded_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": TEXTS, "vec": [vector(t) for t in TEXTS]}), tmp_path / "log.parquet")
    teacher = RecordedTeacher(tmp_path / "log.parquet", input_key="text", output_key="vec")
    np.testing.assert_array_equal(teacher.run(TEXTS), expected(TEXTS))


class CountingTeacher(Teacher):
    """Answers vector(text); counts batches; can be made to die after some batches (a simulated kill)."""

    def __init__(self, die_after: int | None = None):
        self.calls, self.die_after = 0, die_after

    def identity(self):
        return {"source": "counting"}

    def run(self, texts):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt
        self.calls += 1
        return expected(texts)


def test_label_store_resumes_without_relabelling(tmp_path):
    texts = [f"text number {i}" for i in range(10)]
    with pytest.raises(KeyboardInterrupt):
        LabelStore(tmp_path, "k", 10, 3).label_all(CountingTeacher(die_after=2), texts)
    (tmp_path / "teacher-k" / "chunks" / ".000002.npy.abc.tmp").write_bytes(b"\x93NUMPY partial")
    resumed = CountingTeacher()
    out = LabelStore(tmp_path, "k", 10, 3).label_all(resumed, texts)
    assert resumed.calls == 2  # chunks 2 and 3 only (chunks of 3 rows: 0-2, 3-5, 6-8, 9)
    np.testing.assert_array_equal(out, expected(texts))
    assert isinstance(out, np.memmap)
    again = CountingTeacher()
    np.testing.assert_array_equal(LabelStore(tmp_path, "k", 10, 3).get(np.array([9, 0]), again, texts),
                                  expected([texts[9], texts[0]]))
    assert again.calls == 0


def test_label_store_lazy_get_and_corrupt_chunk(tmp_path):
    texts = [f"t{i}" for i in range(6)]
    store, teacher = LabelStore(tmp_path, "k", 6, 2), CountingTeacher()
    np.testing.assert_array_equal(store.get(np.array([5, 1]), teacher, texts), expected(["t5", "t1"]))
    assert teacher.calls == 2
    (tmp_path / "teacher-k" / "chunks" / "000000.npy").write_bytes(b"garbage")
    store2 = LabelStore(tmp_path, "k", 6, 2)
    assert store2.missing() == [0, 1]  # the corrupt chunk is dropped and relabelled, never read
