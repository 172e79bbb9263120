"""The environment fingerprint, the results JSON Schema, and `compare` of two results files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from edgedistill.bench.compare import compare, format_compare
from edgedistill.bench.env import cpu_model, cpuinfo_fields, fingerprint, isa_flags
from edgedistill.bench.schema import load_results, schema_errors
from edgedistill.errors import InputError

X86 = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu sse4_2 avx avx2 fma " \
      "avx512f avx512_vnni amx_tile amx_int8\n\nprocessor\t: 1\nmodel name\t: other\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\nCPU part\t: 0xd42\n"


def test_cpuinfo_and_isa() -> None:
    fields = cpuinfo_fields(X86)
    assert cpu_model(fields) == "Intel(R) Xeon(R) Platinum 8480+"
    assert isa_flags(fields) == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"]
    assert isa_flags(cpuinfo_fields(ARM)) == ["asimd", "asimddp", "i8mm"]


def test_fingerprint_here() -> None:
    env = fingerprint(threads=2, inter_op_threads=1)
    assert env["threads"] == 2 and env["versions"]["onnxruntime"] and env["versions"]["torch"]
    assert env["gpus"] == [] or all(isinstance(g, str) for g in env["gpus"])
    assert env["git_commit"] is None or len(env["git_commit"].removesuffix("-dirty")) == 40


def row(name: str, shape: str, p50: float, cv: float = 0.02) -> dict[str, Any]:
    batch, seq = (int(x) for x in shape.split("x"))
    return {"artifact": name, "backend": "onnxruntime", "contender": name, "shape": shape, "batch": batch, "seq": seq,
            "p50_ms": p50, "p90_ms": p50, "p95_ms": p50, "p99_ms": p50, "mean_ms": p50, "std_ms": 0.0,
            "min_ms": p50, "max_ms": p50, "cv": cv, "throughput_per_s": batch / p50 * 1000, "iterations": 10,
            "warmup_calls": 2, "first_ms": p50, "cold_ms": p50, "load_s": 0.1, "load_rss_mb": 10.0,
            "peak_rss_mb": 100.0, "file_mb": 5.0, "timer": "wall", "mode": "sequential"}


def results(p50: float, cpu: str = "CPU A", ort: str = "1.32.0") -> dict[str, Any]:
    env = fingerprint(threads=1)
    env.update(cpu=cpu, versions={**env["versions"], "onnxruntime": ort})
    settings = {"warmup": 2, "warmup_s": 0.0, "iterations": 10, "min_duration_s": 0.0, "threads": 1,
                "inter_op_threads": 1, "compare": "interleaved", "rounds": 5, "power": "off", "device": "cpu",
                "providers": ["cpu"], "seed": 0}
    return {"schema": 2, "created": "2026-01-01T00:00:00+00:00", "env": env, "settings": settings,
            "results": [row("student", "1x128", p50), row("only-here", "1x8", 1.0)], "comparisons": [],
            "power": None}


def test_schema_accepts_and_rejects() -> None:
    good = results(5.0)
    assert schema_errors(good) == []
    bad = copy.deepcopy(good)
    bad["results"][0]["backend"] = "tflite"
    del bad["results"][0]["p99_ms"]
    errors = schema_errors(bad)
    assert any("results/0" in e and "p99_ms" in e for e in errors) and any("tflite" in e for e in errors)


def test_compare_ratio_table(tmp_path: Path) -> None:
    a, b = results(10.0), results(4.0, cpu="CPU B", ort="1.33.0")
    b["results"][1]["shape"] = "1x16"
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    table = compare(tmp_path / "a.json", tmp_path / "b.json")
    assert [(r["contender"], r["shape"]) for r in table["rows"]] == [("student", "1x128")]
    r = table["rows"][0]
    assert r["ratio"] == pytest.approx(0.4) and r["speedup"] == pytest.approx(2.5)
    assert {d["key"] for d in table["env_diff"]} == {"cpu", "versions.onnxruntime"}
    assert table["only_a"] == [["only-here", "onnxruntime", "1x8"]]
    text = format_compare(table)
    assert "| student | onnxruntime | 1x128 | 10 | 4 | 0.4× | 2.5× |" in text and "CPU A → CPU B" in text


def test_compare_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(results(1.0)))
    with pytest.raises(InputError, match="not found"):
        compare(tmp_path / "a.json", tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a bench results file"):
        load_results(tmp_path / "bad.json")
    with pytest.raises(InputError, match="unknown metric"):
        compare(tmp_path / "a.json", tmp_path / "a.json", metric="p42_ms")
