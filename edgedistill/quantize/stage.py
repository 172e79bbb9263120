"""The quantize stage's one entry point: pick the module for the step's mode."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.config import QuantizeStep
from edgedistill.quantize.data import QuantizeData


def run(step: QuantizeStep, model: Artifact, out: Path, data: QuantizeData | None = None) -> Artifact:
    """Quantize ``model`` with ``step`` into ``out/model.onnx``.

    ``data`` is needed by static-int8 and trt-int8 (calibration texts) and by a budget or a sensitivity
    analysis (evaluation texts; STS pairs for an ``sts_drop`` budget); dynamic-int8 and fp16 ignore it;
    qad-int8 also needs ``data.qad`` (the float student folder, training texts and the teacher's outputs).

    Raises:
        InputError: see the mode's module (:mod:`ort`, :mod:`static`, :mod:`trt_qdq`, :mod:`fp16`, :mod:`qad`).
    """
    if step.mode == "dynamic-int8":
        from edgedistill.quantize import ort

        return ort.run(step, model, out)
    if step.mode == "fp16":
        from edgedistill.quantize import fp16

        return fp16.run(step, model, out)
    if step.mode == "trt-int8":
        from edgedistill.quantize import trt_qdq

        return trt_qdq.run(step, model, out, data)
    if step.mode == "qad-int8":
        from edgedistill.quantize import qad

        return qad.run(step, model, out, data)
    from edgedistill.quantize import static

    return static.run(step, model, out, data)
