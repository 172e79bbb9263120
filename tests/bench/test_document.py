"""Results documents: the header every benchmark's results carry, and the file name they get."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import read_json
from edgedistill.bench.document import device_label, results_document, write_results


def test_device_label_names_the_gpu_or_the_cpu_and_cores():
    assert device_label({"gpus": ["NVIDIA H200"], "cpu": "x", "cores": 16}) == "NVIDIA_H200"
    xeon = {"gpus": [], "cpu": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "cores": 2}
    assert device_label(xeon) == "intel-xeon-platinum-8481c-2core"
    assert device_label({"gpus": [], "cpu": "AMD EPYC 7B13 64-Core Processor", "cores": 2}) == "amd-epyc-7b13-2core"


def test_document_keeps_a_bench_files_env_and_date(tmp_path: Path):
    env = {"cpu": "AMD EPYC", "cores": 2, "gpus": [], "git_commit": "abc"}
    bench = {"schema": 2, "created": "2026-11-29T10:00:00+00:00", "env": env, "results": [{"p50_ms": 1.5}]}
    path = write_results(tmp_path / "optimum", "bench-results", "demo side by side", bench)
    assert path == tmp_path / "optimum" / "results" / "20261129-demo-side-by-side-amd-epyc-2core.json"
    doc = read_json(path)
    assert doc["document"] == 1 and doc["kind"] == "bench-results" and doc["date"] == "2026-11-29"
    assert doc["env"] == env and doc["schema"] == 2 and doc["results"] == [{"p50_ms": 1.5}] and doc["command"]


def test_document_fingerprints_a_plain_payload():
    doc = results_document("sts-targets", "x", {"rows": [1, 2]}, threads=2)
    assert doc["env"]["threads"] == 2 and "git_commit" in doc["env"] and doc["rows"] == [1, 2]
    assert len(doc["date"]) == 10 and doc["created"].startswith(doc["date"])
