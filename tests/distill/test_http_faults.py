"""The HTTP teacher under faults (a scripted server on 127.0.0.1): a reply of another width, Retry-After, a reply
cut off mid-body, and a fatal failure with requests still in flight — and what reaches the label store."""

from __future__ import annotations

import email.utils
import time

import numpy as np
import pytest
import yaml
from support.configs import student_config, tiny_config
from support.http_server import ServerState, teacher_server, vector
from typer.testing import CliRunner

from edgedistill.artifacts import umask_mode
from edgedistill.cli import app
from edgedistill.config import HttpTeacherConfig
from edgedistill.distill.label_store import LabelStore
from edgedistill.errors import InputError
from edgedistill.models.teachers.http_client import retry_after_seconds
from edgedistill.models.teachers.http_teacher import HttpTeacher

TEXTS = [f"text number {i} " + "word " * (i % 5) for i in range(12)]


def http_cfg(url: str, **kw) -> HttpTeacherConfig:
    base = {"url": url + "/v1/embeddings", "timeout_s": 2.0, "retries": 3, "backoff_s": 0.01, "batch_size": 2,
            "concurrency": 1}
    return HttpTeacherConfig(**{**base, **kw})


def test_width_comes_from_the_first_reply_and_a_wider_one_is_never_stored(tmp_path):
    state = ServerState(script=["ok", "ok", "wide"])
    with teacher_server(state) as url:
        store = LabelStore(tmp_path, "k", len(TEXTS), 2)
        with pytest.raises(InputError, match="width 4, but the first reply's width is 3; nothing was stored"):
            store.label_all(HttpTeacher(http_cfg(url)), TEXTS)
        stored = sorted((tmp_path / "teacher-k" / "chunks").glob("*.npy"))
        assert [p.name for p in stored] == ["000000.npy", "000001.npy"]
        for path in [*stored, tmp_path / "teacher-k" / "index.json"]:
            assert path.stat().st_mode & 0o777 == umask_mode(), path  # not mkstemp's 0600
        out = LabelStore(tmp_path, "k", len(TEXTS), 2).label_all(HttpTeacher(http_cfg(url)), TEXTS)  # healthy now
    np.testing.assert_array_equal(out, [vector(t) for t in TEXTS])
    assert len(state.requests) == 3 + 4  # the first two chunks were not asked again


def test_a_store_holding_a_chunk_of_another_width_relabels_it(tmp_path):
    """A store written before widths were checked: the odd chunk is asked again, the others are kept."""
    store = LabelStore(tmp_path, "k", 6, 2)
    store.write_chunk(0, np.ones((2, 3), np.float32))
    store.write_chunk(1, np.ones((2, 3), np.float32))
    np.save(store.chunk_path(2), np.ones((2, 5), np.float32))  # as an unchecked older version stored it
    state = ServerState()
    with teacher_server(state) as url:
        out = LabelStore(tmp_path, "k", 6, 2).label_all(HttpTeacher(http_cfg(url)), TEXTS[:6])
    assert out.shape == (6, 3) and len(state.requests) == 1
    np.testing.assert_array_equal(out[4:], [vector(t) for t in TEXTS[4:6]])


def test_force_clears_the_label_store_of_a_run(tmp_path, tiny_bert, tiny_texts):
    """A poisoned store (wrong width, written by an older version) no longer blocks a run: --force asks again."""
    state = ServerState(width=32)  # the student's width
    with teacher_server(state) as url:
        config = tiny_config(tmp_path, tiny_bert, tiny_texts)
        cfg = yaml.safe_load(config.read_text())
        cfg["teacher"] = {"source": "http", "http": {"url": url + "/v1/embeddings", "batch_size": 16},
                          "tokenizer": str(tiny_bert)}
        cfg["student"] = {"hf_config": str(student_config(tmp_path, tiny_bert))}
        cfg["distill"]["keep_better"] = False
        config.write_text(yaml.safe_dump(cfg))
        runner = CliRunner()
        first = runner.invoke(app, ["distill", str(config), "--out", str(tmp_path / "out")])
        assert first.exit_code == 0, first.output
        asked = len(state.requests)
        chunks = list((tmp_path / "out" / "cache").glob("teacher-*/outputs.npy"))
        np.save(chunks[0], np.ones((len(tiny_texts), 5), np.float32))  # poison the consolidated store
        forced = runner.invoke(app, ["distill", str(config), "--out", str(tmp_path / "out"), "--force"])
        assert forced.exit_code == 0, forced.output
    assert len(state.requests) == 2 * asked  # every row asked again
    assert np.load(chunks[0]).shape[1] == 32


@pytest.mark.parametrize("header", ["1", "date"])
def test_retry_after_is_honoured(header):
    value = email.utils.formatdate(time.time() + 2, usegmt=True) if header == "date" else header
    state = ServerState(script=[f"429 retry-after={value}"])
    with teacher_server(state) as url:
        HttpTeacher(http_cfg(url, backoff_s=0.01)).run(TEXTS[:2])
    waited = state.times[1] - state.times[0]
    assert waited >= (0.95 if header == "1" else 1.0), waited  # an HTTP date has one-second resolution


def test_retry_after_is_capped_and_parsed():
    state = ServerState(script=["503 retry-after=30"])
    with teacher_server(state) as url:
        HttpTeacher(http_cfg(url, max_retry_after_s=0.2)).run(TEXTS[:2])
    assert 0.19 <= state.times[1] - state.times[0] < 5
    assert retry_after_seconds("4") == 4.0 and retry_after_seconds(None) is None
    assert retry_after_seconds("not a date") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)


def test_a_reply_cut_off_mid_body_is_retried():
    state = ServerState(script=["cut"])
    with teacher_server(state) as url:
        out = HttpTeacher(http_cfg(url)).run(TEXTS[:2])
    np.testing.assert_array_equal(out, [vector(t) for t in TEXTS[:2]])
    assert len(state.requests) == 2


def test_a_fatal_failure_queues_nothing_more(tmp_path):
    """retries: 2, one request at a time, every answer a 500: 3 requests, not another batch's full cycle too."""
    state = ServerState(script=["500"] * 100)
    with teacher_server(state) as url:
        teacher = HttpTeacher(http_cfg(url, retries=2, concurrency=1))
        with pytest.raises(InputError, match="failed after 2 retries"):
            LabelStore(tmp_path, "k", len(TEXTS), 2).label_all(teacher, TEXTS)
    assert len(state.requests) == 3


def test_a_fatal_failure_stops_the_retries_in_flight(tmp_path):
    """Four requests in flight; one gets a 400 (fatal), the other three a 500 and wait to retry: none retries."""
    state = ServerState(script=["400"] + ["500"] * 100, latency_s=0.05)
    with teacher_server(state) as url:
        teacher = HttpTeacher(http_cfg(url, retries=3, backoff_s=0.5, concurrency=4))
        start = time.monotonic()
        with pytest.raises(InputError, match="answered HTTP 400"):
            LabelStore(tmp_path, "k", len(TEXTS), 2).label_all(teacher, TEXTS)
        took = time.monotonic() - start
        time.sleep(0.6)  # a retry still pending would have been sent by now
    assert len(state.requests) == 4 and took < 0.45, (len(state.requests), took)
    assert not list((tmp_path / "teacher-k" / "chunks").glob("*.npy"))
