"""The quantize stage's one entry point: the step's mode picks the quantizer."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.config import DynamicInt8, Fp16, QadInt8, QuantizeStep, StaticInt8, TrtInt8, WeightOnly
from edgedistill.quantize.data import QuantizeData


def run(step: QuantizeStep, model: Artifact, out: Path, data: QuantizeData | None = None) -> Artifact:
    """Quantize ``model`` with ``step`` into ``out/model.onnx``.

    ``data`` is needed by static-int8 and trt-int8 (calibration texts) and by a budget or a sensitivity
    analysis (evaluation texts; STS pairs for an ``sts_drop`` budget); dynamic-int8 and fp16 ignore it;
    qad-int8 also needs ``data.qad`` (the float student folder, training texts and the teacher's outputs).

    Raises:
        InputError: see the mode's module (:mod:`ort`, :mod:`static_int8`, :mod:`trt_qdq`, :mod:`fp16`, :mod:`qad`).
    """
    if isinstance(step, DynamicInt8):
        from edgedistill.quantize.ort import dynamic_int8

        return dynamic_int8(step, model, out)
    if isinstance(step, Fp16):
        from edgedistill.quantize.fp16 import fp16

        return fp16(step, model, out)
    if isinstance(step, TrtInt8):
        from edgedistill.quantize.trt_qdq import trt_int8

        return trt_int8(step, model, out, data)
    if isinstance(step, WeightOnly):
        from edgedistill.quantize.weight_only import weight_only

        return weight_only(step, model, out, data)
    if isinstance(step, QadInt8):
        from edgedistill.quantize.qad import qad_int8

        return qad_int8(step, model, out, data)
    assert isinstance(step, StaticInt8)
    from edgedistill.quantize.static_int8 import static_int8

    return static_int8(step, model, out, data)
