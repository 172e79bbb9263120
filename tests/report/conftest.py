"""Fixture: a run directory with fake evaluate metrics and bench results (4 artifacts, 2 shapes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgedistill.artifacts import atomic_write_json

SHAPES = [(1, 128), (8, 128)]


def bench_row(name: str, backend: str, batch: int, seq: int, p50: float) -> dict[str, Any]:
    return {"artifact": name, "backend": backend, "shape": f"{batch}x{seq}", "batch": batch, "seq": seq,
            "p50_ms": p50, "p90_ms": p50 * 1.1, "p95_ms": p50 * 1.15, "p99_ms": p50 * 1.2, "mean_ms": p50,
            "std_ms": 0.1, "min_ms": p50 * 0.9, "max_ms": p50 * 1.3, "cv": 0.01, "iterations": 50,
            "throughput_per_s": batch / (p50 / 1000), "peak_rss_mb": 300.0, "load_s": 0.5, "file_mb": 1.0}


def metrics_entry(kind: str, backend: str, file_mb: float, fid: float, dev: float, test: float) -> dict[str, Any]:
    return {"kind": kind, "backend": backend, "path": f"/x/{kind}", "params": 22_700_000 if kind == "hf" else None,
            "file_mb": file_mb, "fidelity_cosine": fid, "sts_eval_spearman": dev, "sts_test_spearman": test}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    metrics = {
        "order": ["teacher", "student", "student-onnx", "student-int8"],
        "artifacts": {
            "teacher": metrics_entry("hf", "torch", 86.0, 1.0, 86.7, 82.0),
            "student": metrics_entry("hf", "torch", 43.0, 0.98, 85.0, 80.5),
            "student-onnx": metrics_entry("onnx", "onnxruntime", 43.0, 0.98, 85.0, 80.5),
            "student-int8": metrics_entry("onnx", "onnxruntime", 11.0, 0.97, 84.1, 79.9),
        },
    }
    p50 = {"teacher": 20.0, "student": 10.0, "student-onnx": 8.0}
    backend = {"teacher": "torch", "student": "torch", "student-onnx": "onnxruntime"}
    rows = [bench_row(n, backend[n], b, s, p50[n] * b) for n in p50 for b, s in SHAPES]
    atomic_write_json(tmp_path / "evaluate" / "metrics.json", metrics)
    atomic_write_json(tmp_path / "bench" / "results.json",
                      {"schema": 1, "env": {"cpu": "Test CPU", "cores": 4, "threads": 4}, "results": rows})
    return tmp_path


