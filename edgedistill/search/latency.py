"""Candidate latency: measured here with the bench stage (every candidate interleaved in one run), or, for a
remote target, the roofline estimate (labelled as an estimate, never a measurement)."""

from __future__ import annotations

import math
from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.config import BenchConfig, Shape
from edgedistill.config.search import LOCAL

MEASURED = "measured (ONNX Runtime, this machine, interleaved p50)"
ESTIMATED = "estimate (roofline: per-node sum at the target's peaks)"


def measured(artifacts: list[Artifact], bench: BenchConfig, shapes: list[Shape], run_dir: Path,
             iterations: int) -> dict[str, dict[str, float]]:
    """p50 ms per candidate and shape over ``iterations`` timed runs, all candidates interleaved in one bench stage
    in ``run_dir``."""
    from edgedistill import api

    cfg = bench.model_copy(update={"shapes": shapes, "backends": ["onnxruntime"], "power": "off",
                                   "iterations": iterations, "rounds": min(bench.rounds, 5, iterations),
                                   "min_duration_s": 0.0})
    p50 = api.bench(artifacts, run_dir, cfg)["p50_ms"]
    return {a.name: {s.label: float(p50[f"{a.name}@{s.label}"]) for s in shapes} for a in artifacts}


def estimated(items: list[tuple[str, Path, str]], target: str, shapes: list[Shape]) -> dict[str, dict[str, float]]:
    """Roofline ms per candidate and shape on ``target``: ``items`` are (candidate, float graph, precision)."""
    from edgedistill.estimate import estimate

    return {name: {s.label: estimate(path, target, precision, dims(s)).unfused_ms for s in shapes}
            for name, path, precision in items}


def dims(shape: Shape) -> dict[str, int]:
    return {"batch": shape.batch} | ({"sequence": shape.seq} if shape.seq is not None else {})


def latency_kind(target: str) -> str:
    return MEASURED if target == LOCAL else f"{ESTIMATED}, {target}"


def rank_ms(per_shape: dict[str, float]) -> float:
    """One latency to rank candidates by: the geometric mean of their p50s over the shapes."""
    return math.exp(sum(math.log(v) for v in per_shape.values()) / len(per_shape))
