"""The build stage: an ONNX artifact in, ``out/model.engine`` and its sidecar out, for one target's GPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.errors import InputError
from edgedistill.trt.builder import build, build_serialized
from edgedistill.trt.options import BuildOptions
from edgedistill.trt.plan import BuildPlan

OUTPUTS = ("model.engine", "model.engine.json")  # the engine and its sidecar


def run(options: BuildOptions, target: str, source: Artifact, out: Path,
        build_fn: Callable[[Path, BuildPlan], bytes] = build_serialized) -> Artifact:
    """Build ``source`` for ``target`` into ``out`` (engine written last, after its sidecar).

    Raises:
        InputError: not an ONNX artifact, or see :func:`edgedistill.trt.builder.build`.
        ConfigError, MissingDependencyError: see :func:`edgedistill.trt.builder.build`.
    """
    if source.kind != "onnx":
        raise InputError(f"build takes an ONNX model; '{source.name}' is a {source.kind} artifact — export it first")
    built = build(source.path, target, out, options, build_fn)
    meta = {"target": target, "precision": built.plan.precision, "flags": list(built.plan.flags),
            "sidecar": built.sidecar.name}
    return Artifact(f"{source.name}-{target}", "trt", built.engine, source.task, meta)
