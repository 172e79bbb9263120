"""The export stage: a Hugging Face folder in, ``out/model.onnx`` out, proved against torch before it is
published, with the folder's tokenizer or image processor beside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgedistill import verification
from edgedistill.artifacts import Artifact, atomic_write_json, staging_dir
from edgedistill.config import ExportConfig
from edgedistill.errors import InputError
from edgedistill.export.exporter import export_onnx
from edgedistill.export.verify import measure_onnx
from edgedistill.models.onnx_file import ONNX_NAME, onnx_size_mb, publish_onnx, remove_onnx
from edgedistill.models.task_model import TaskModel, load_task_model
from edgedistill.models.tokenizer_files import copy_preprocessor_files

VERIFICATION_NAME = "verification.json"
BISECT_NAME = "bisect.json"


def run(cfg: ExportConfig, model: Artifact, out: Path, bisect: bool = False) -> Artifact:
    """Export a Hugging Face model folder to ``out/model.onnx``, verified, with its preprocessing files.

    ``out/verification.json`` is written whether or not verification passes; ``out/model.onnx`` only
    appears once it has passed. With ``bisect``, ``out/bisect.json`` compares every module's output with
    torch (see :func:`edgedistill.export.bisect.bisect_onnx`) and a failure names the first module that differs.

    Returns:
        The ONNX artifact; ``meta`` holds the verification summary, export time and size (and the bisect line).
    Raises:
        InputError: ``model`` is not a loadable Hugging Face folder or the config does not fit it.
        VerificationError: ONNX Runtime disagrees with torch beyond tolerance.
    """
    if model.kind != "hf":
        raise InputError(f"export takes a Hugging Face model folder; '{model.name}' is a {model.kind} artifact")
    task_model, preprocessor = load_task_model(model.path, model.task)
    bisected = None
    with staging_dir(out, "export") as staging:
        start = time.perf_counter()
        export_onnx(task_model, preprocessor, cfg, staging / ONNX_NAME, source=model.path)
        export_s = time.perf_counter() - start
        report = measure_onnx(task_model, preprocessor, staging / ONNX_NAME, cfg)
        atomic_write_json(out / VERIFICATION_NAME, report)
        if bisect:
            bisected = bisect_file(task_model, preprocessor, staging / ONNX_NAME, cfg, out / BISECT_NAME)
        if not report["passed"]:
            remove_onnx(out / ONNX_NAME)  # a stale model from an earlier run must not pass for this one
            verification.check(report, "the ONNX export",
                               hint=bisected or "rerun with --bisect to find the first module that differs")
        publish_onnx(staging / ONNX_NAME, out / ONNX_NAME)
    copy_preprocessor_files(model.path, out)
    meta = {"verification": verification.summary(report), "export_s": round(export_s, 2),
            "size_mb": onnx_size_mb(out / ONNX_NAME)}
    if bisected:
        meta["bisect"] = bisected
    return Artifact(name=f"{model.name}-onnx", kind="onnx", path=out / ONNX_NAME, task=model.task, meta=meta)


def bisect_file(model: TaskModel, preprocessor: Any, onnx_path: Path, cfg: ExportConfig, report_path: Path) -> str:
    """Bisect ``onnx_path`` against ``model``, write the report to ``report_path``; returns its one-line summary."""
    from edgedistill.export.bisect import bisect_onnx, describe

    report = bisect_onnx(model, preprocessor, onnx_path, cfg)
    atomic_write_json(report_path, report)
    return describe(report)
