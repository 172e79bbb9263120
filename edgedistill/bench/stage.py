"""The bench stage: every artifact timed in one run (same inputs, same threads) into ``out/results.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.bench.runner import benchmark
from edgedistill.config import BenchConfig, DynamicAxes, check_shape_in_range
from edgedistill.config.base import DEFAULT_TASK
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import onnx_metadata

RESULTS = "results.json"


def check_bench_shapes(artifact: Artifact, cfg: BenchConfig) -> None:
    """Refuse shapes outside the dynamic range an ONNX file was exported (and verified) for.

    Raises:
        InputError: naming the shape, the axis and the exported range.
    """
    meta = onnx_metadata(artifact.path) if artifact.kind == "onnx" else {}
    if "edgedistill.batch_range" not in meta:
        return
    ranges = {k: meta[f"edgedistill.{k}_range"].split(",") for k in ("batch", "sequence")
              if f"edgedistill.{k}_range" in meta}  # an image model has no sequence axis
    dynamic = DynamicAxes.model_validate(ranges)
    for shape in cfg.shapes:
        try:
            check_shape_in_range(shape, dynamic, where=f"{artifact.name} ({artifact.path.name}): shape {shape.label}")
        except ValueError as err:
            raise InputError(str(err).replace("widen export.dynamic", "re-export with a wider range")) from None


def p50_summary(results: dict[str, Any]) -> dict[str, float]:
    return {f"{r['artifact']}@{r['shape']}": r["p50_ms"] for r in results["results"]}


def run(cfg: BenchConfig, models: list[Artifact], out: Path) -> Artifact:
    """Benchmark ``models`` on every fitting backend of ``cfg`` into ``out/results.json``.

    Returns:
        The results artifact; ``meta["p50_ms"]`` holds each artifact's median per shape.
    Raises:
        InputError: a shape lies outside an ONNX model's exported range, or no model fits the backends.
        MissingDependencyError: a backend, execution provider or tegrastats (power on) is missing.
    """
    for model in models:
        check_bench_shapes(model, cfg)
    results = benchmark(cfg, models)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULTS, results)
    task = models[0].task if models else DEFAULT_TASK
    return Artifact("bench-results", "results", out / RESULTS, task, {"p50_ms": p50_summary(results)})
