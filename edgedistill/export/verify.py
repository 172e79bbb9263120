"""Verification of an export: ONNX Runtime (CPU) and torch on the Task's verification inputs — for text the
shortest, a middle and the longest exported sequence, single rows and padding-heavy batches; for images batch 1
and 4 — every output compared (:mod:`edgedistill.verification`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill import verification
from edgedistill.config import ExportConfig
from edgedistill.errors import VerificationError
from edgedistill.models.task_model import TaskModel

REFERENCE = "torch"


def torch_outputs(model: TaskModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's output on ``feeds`` (inputs it does not take are ignored)."""
    with torch.inference_mode():
        out = model(**{name: torch.from_numpy(feeds[name]) for name in model.input_names if name in feeds})
    return {model.output_name: out.float().numpy()}


def measure_onnx(model: TaskModel, preprocessor: Any, onnx_path: Path, cfg: ExportConfig) -> dict[str, Any]:
    """Run ONNX Runtime (CPU) and torch on the Task's verification inputs and compare every output.

    Returns:
        The report of :func:`edgedistill.verification.report` (``reference``: torch).
    Raises:
        VerificationError: the ONNX model lacks an input or output the model has.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    graph_inputs = [i.name for i in session.get_inputs()]
    if missing := set(graph_inputs) - set(model.input_names):
        raise VerificationError(f"{onnx_path}: ONNX inputs {sorted(missing)} are not inputs of the model")
    output_names = [o.name for o in session.get_outputs()]
    results = []
    for label, feeds in model.spec.verification_feeds(model, preprocessor, cfg.dynamic):
        got = dict(zip(output_names, session.run(None, {n: feeds[n] for n in graph_inputs}), strict=True))
        for name, ref in torch_outputs(model, feeds).items():
            if name not in got:
                raise VerificationError(f"{onnx_path}: no output '{name}' (has {output_names}); re-export the model")
            results.append(verification.result_row(name, label, ref, got[name], cfg.atol, cfg.min_cosine))
    return {**verification.report(results, cfg.atol, cfg.min_cosine, REFERENCE), "provider": "CPUExecutionProvider"}


def verify_onnx(model: TaskModel, preprocessor: Any, onnx_path: Path, cfg: ExportConfig) -> dict[str, Any]:
    """:func:`measure_onnx`, failing beyond tolerance.

    Raises:
        VerificationError: an output differs by more than ``cfg.atol`` or a row cosine is below ``cfg.min_cosine``
            at some shape (the message names the worst one).
    """
    report = measure_onnx(model, preprocessor, onnx_path, cfg)
    verification.check(report, "the ONNX export")
    return report
