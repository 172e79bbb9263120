"""Named static-INT8 presets after the target CPU or runtime, the way Optimum names its presets.

A preset fills the options of a :class:`QuantizeStep` that the user did not set; options set in the
config always win. Why each preset is what it is (ONNX Runtime's quantization guide):

- ``avx2`` / ``avx512``: no VNNI, so u8×s8 products go through ``VPMADDUBSW``, which can saturate
  int16 intermediates; 7-bit weights (``reduce_range``) avoid it. Activations u8 asymmetric.
- ``avx512-vnni``: ``VPDPBUSD`` accumulates u8×s8 straight into int32, full 8-bit range is safe.
- ``arm64``: ARM kernels prefer s8 symmetric activations.
- ``tensorrt``: explicit quantization: s8 symmetric activations and weights, per-channel weights,
  Q/DQ pairs on the inputs of MatMul/Gemm/Conv only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from edgedistill.config import QuantizeStep

CPU_OPS = ("MatMul", "Gemm")
TRT_OPS = ("MatMul", "Gemm", "Conv")


@dataclass(frozen=True)
class StaticSettings:
    """Everything static INT8 quantization needs to know, after presets and user options are merged."""

    calibration: str = "minmax"
    calibration_size: int = 256
    percentile: float = 99.999
    per_channel: bool = True
    reduce_range: bool = False
    symmetric_activations: bool = False
    op_types: tuple[str, ...] = CPU_OPS
    weight_qdq_pair: bool = False  # float weight + Q + DQ (TensorRT) instead of an int8 weight + DQ
    quantize_outputs: bool = False  # Q/DQ on MatMul outputs too: one more rounding, no faster on ORT CPU


PRESETS = {
    "avx2": StaticSettings(reduce_range=True),
    "avx512": StaticSettings(reduce_range=True),
    "avx512-vnni": StaticSettings(reduce_range=False),
    "arm64": StaticSettings(symmetric_activations=True),
    "tensorrt": StaticSettings(symmetric_activations=True, op_types=TRT_OPS, weight_qdq_pair=True),
}
STEP_FIELDS = ("calibration", "calibration_size", "percentile", "per_channel", "reduce_range",
               "symmetric_activations")


def resolve(step: QuantizeStep) -> StaticSettings:
    """The preset's settings (or the defaults) with every option the user set in ``step`` applied on top.

    Mode ``trt-int8`` always starts from the ``tensorrt`` preset.
    """
    name = "tensorrt" if step.mode == "trt-int8" else step.preset
    base = PRESETS[name] if name else StaticSettings()
    chosen = {f: getattr(step, f) for f in STEP_FIELDS if f in step.model_fields_set or name is None}
    return replace(base, **chosen)
