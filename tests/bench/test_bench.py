"""Benchmark statistics against numpy, inputs, and a whole bench run on tiny models."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.artifacts import Artifact, read_json
from edgedistill.bench import bench_session, benchmark, latency_stats, make_feeds, run
from edgedistill.bench.schema import schema_errors
from edgedistill.config import BenchConfig, Shape
from edgedistill.engines import open_session
from edgedistill.errors import InputError
from edgedistill.models.task_model import load_task_model
from edgedistill.tasks.inputs import text_spec

ROW_KEYS = {"artifact", "backend", "contender", "shape", "batch", "seq", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
            "mean_ms", "std_ms", "min_ms", "max_ms", "cv", "throughput_per_s", "iterations", "warmup_calls",
            "first_ms", "cold_ms", "timer", "peak_rss_mb", "gpu_peak_mb", "load_s", "load_rss_mb", "file_mb",
            "mode", "rounds", "sessions", "threads", "device", "providers"}
ENV_KEYS = {"cpu", "cores", "python", "torch", "onnxruntime", "threads", "isa", "versions", "git_commit", "jetson"}


def export_onnx(model_dir: Path, out: Path, dynamic: bool = True) -> Path:
    model, tokenizer = load_task_model(model_dir, "sentence-embedding")
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    ids = torch.full((1, 16), 7, dtype=torch.long)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(out / "model.onnx"),
                          input_names=names, output_names=["sentence_embedding"], opset_version=17, dynamo=False,
                          dynamic_axes=axes)
    return out / "model.onnx"


def test_stats_match_numpy() -> None:
    seconds = list(np.random.default_rng(0).uniform(0.001, 0.01, size=101))
    ms = np.asarray(seconds) * 1000
    stats = latency_stats(seconds)
    for q in (50, 90, 95, 99):
        assert stats[f"p{q}_ms"] == pytest.approx(np.percentile(ms, q))
    assert stats["mean_ms"] == pytest.approx(ms.mean())
    assert stats["std_ms"] == pytest.approx(ms.std(ddof=1))
    assert (stats["min_ms"], stats["max_ms"]) == (pytest.approx(ms.min()), pytest.approx(ms.max()))
    assert stats["cv"] == pytest.approx(ms.std(ddof=1) / ms.mean())
    assert latency_stats([0.002])["std_ms"] == 0.0
    with pytest.raises(InputError):
        latency_stats([])


def test_make_feeds_deterministic() -> None:
    shape = Shape(batch=3, seq=7)
    a, b = make_feeds(shape, text_spec(100), seed=0), make_feeds(shape, text_spec(100), seed=0)
    assert set(a) == {"input_ids", "attention_mask", "token_type_ids"}
    for k in a:
        assert a[k].dtype == np.int64 and a[k].shape == (3, 7)
        np.testing.assert_array_equal(a[k], b[k])
    assert a["input_ids"].min() >= 5 and a["input_ids"].max() < 100
    assert (a["attention_mask"] == 1).all() and (a["token_type_ids"] == 0).all()
    with pytest.raises(InputError):
        make_feeds(shape, text_spec(5))


def test_bench_session_honours_iterations(tiny_bert: Path) -> None:
    session = open_session(Artifact("t", "hf", tiny_bert), threads=1)
    shapes = [Shape(batch=1, seq=8), Shape(batch=2, seq=16)]
    rows = bench_session(session, shapes, warmup=2, iterations=7, min_duration_s=0.0, spec=text_spec(50))
    assert [r["shape"] for r in rows] == ["1x8", "2x16"]
    assert [r["iterations"] for r in rows] == [7, 7]
    assert rows[1]["throughput_per_s"] == pytest.approx(2 / (rows[1]["mean_ms"] / 1000))
    longer = bench_session(session, shapes[:1], warmup=0, iterations=1, min_duration_s=0.05, spec=text_spec(50))
    assert longer[0]["iterations"] > 1


def test_run_writes_results(tiny_bert: Path, tmp_path: Path) -> None:
    onnx = export_onnx(tiny_bert, tmp_path / "onnx")
    artifacts = [Artifact("teacher", "hf", tiny_bert), Artifact("teacher-onnx", "onnx", onnx)]
    cfg = BenchConfig.model_validate({"shapes": [{"batch": 1, "seq": 16}, {"batch": 4, "seq": 32}], "warmup": 1,
                                       "iterations": 5, "threads": 1})
    made = run(cfg, artifacts, tmp_path / "bench")
    results = read_json(tmp_path / "bench" / "results.json")
    assert made.path == tmp_path / "bench" / "results.json" and made.kind == "results"
    assert made.meta["p50_ms"] == {f"{r['artifact']}@{r['shape']}": r["p50_ms"] for r in results["results"]}
    assert results["schema"] == 2 and schema_errors(results) == []
    assert set(results["env"]) >= ENV_KEYS and results["env"]["threads"] == 1
    assert results["settings"]["compare"] == "interleaved" and results["power"] is None
    pairs = [(r["artifact"], r["backend"], r["shape"]) for r in results["results"]]
    assert pairs == [("teacher", "torch", "1x16"), ("teacher", "torch", "4x32"),
                     ("teacher-onnx", "onnxruntime", "1x16"), ("teacher-onnx", "onnxruntime", "4x32")]
    for row in results["results"]:
        assert set(row) == ROW_KEYS
        assert row["iterations"] == 5 and row["peak_rss_mb"] > 0 and row["file_mb"] > 0 and row["load_s"] > 0
        assert row["p50_ms"] <= row["p99_ms"] and row["mode"] == "interleaved" and row["warmup_calls"] == 1
        assert row["cold_ms"] > 0 and row["first_ms"] > 0 and row["threads"]["intra_op"] == 1
    comps = results["comparisons"]
    assert [(c["baseline"], c["contender"], c["shape"]) for c in comps] == [("teacher", "teacher-onnx", "1x16"),
                                                                           ("teacher", "teacher-onnx", "4x32")]
    for c in comps:
        assert c["ci_low"] <= c["speedup"] <= c["ci_high"] and c["rounds"] == 5
        rows = {r["artifact"]: r for r in results["results"] if r["shape"] == c["shape"]}
        assert c["speedup"] == pytest.approx(rows["teacher"]["p50_ms"] / rows["teacher-onnx"]["p50_ms"])


def test_sequential_mode_and_warmup_by_time(tiny_bert: Path, tmp_path: Path) -> None:
    cfg = BenchConfig(backends=["torch"], shapes=[Shape(batch=1, seq=8)], warmup=0, warmup_s=0.05,
                      iterations=3, min_duration_s=0.0, threads=1, compare="sequential")
    results = benchmark(cfg, [Artifact("a", "hf", tiny_bert), Artifact("b", "hf", tiny_bert)])
    assert schema_errors(results) == [] and results["comparisons"] == []
    assert {r["mode"] for r in results["results"]} == {"sequential"}
    assert all(r["warmup_calls"] > 1 for r in results["results"])  # 50 ms of warm-up is many calls of a tiny model


def test_rotating_probe_calls_each_session_in_turn() -> None:
    from edgedistill.bench.probe import RotatingProbe

    calls: list[int] = []

    class Fake:
        def __init__(self, i: int):
            self.i, self.parts, self.timer = i, {"h2d_s": [], "d2h_s": []}, "wall"

        def __call__(self) -> float:
            calls.append(self.i)
            return 0.001 * (self.i + 1)

    probe = RotatingProbe([Fake(0), Fake(1), Fake(2)])  # type: ignore[list-item]
    assert [probe() for _ in range(7)] == [0.001, 0.002, 0.003, 0.001, 0.002, 0.003, 0.001]
    assert calls == [0, 1, 2, 0, 1, 2, 0]


def test_several_fresh_sessions_pool_into_one_row(tiny_bert: Path, tmp_path: Path) -> None:
    onnx = export_onnx(tiny_bert, tmp_path / "onnx")
    cfg = BenchConfig.model_validate({"backends": ["onnxruntime"], "shapes": [{"batch": 1, "seq": 8}], "warmup": 2,
                                       "iterations": 9, "threads": 1, "sessions": 3})
    results = benchmark(cfg, [Artifact("m", "onnx", onnx)])
    row = results["results"][0]
    assert schema_errors(results) == [] and row["sessions"] == 3 and results["settings"]["sessions"] == 3
    assert row["iterations"] == 9 and row["warmup_calls"] == 6  # the warm-up count is per session


def test_run_only_fitting_backends(tiny_bert: Path, tmp_path: Path) -> None:
    cfg = BenchConfig.model_validate({"backends": ["onnxruntime"], "shapes": [{"batch": 1, "seq": 8}], "warmup": 0,
                                       "iterations": 1})
    with pytest.raises(InputError, match="no artifact can run"):
        run(cfg, [Artifact("teacher", "hf", tiny_bert)], tmp_path)


def test_shape_outside_fixed_dims(tiny_bert: Path, tmp_path: Path) -> None:
    onnx = export_onnx(tiny_bert, tmp_path / "onnx", dynamic=False)
    cfg = BenchConfig.model_validate({"shapes": [{"batch": 1, "seq": 32}], "warmup": 0, "iterations": 1, "threads": 1})
    with pytest.raises(InputError, match="fixed to 16"):
        run(cfg, [Artifact("fixed", "onnx", onnx)], tmp_path / "bench")
