"""What static INT8 quantization needs to know, resolved from a step: its options (presets already applied by the
config, see :mod:`edgedistill.config.quantize`) and what the target runtime dictates — which op types get Q/DQ, and
whether weights keep a float copy with a Q/DQ pair (TensorRT's explicit quantization)."""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.config import Calibrated, TrtInt8

CPU_OPS = ("MatMul", "Gemm")
TRT_OPS = ("MatMul", "Gemm", "Conv")


@dataclass(frozen=True)
class StaticSettings:
    """Everything static INT8 quantization needs, after presets and user options are merged."""

    calibration: str
    calibration_size: int
    percentile: float
    per_channel: bool
    reduce_range: bool
    symmetric_activations: bool
    op_types: tuple[str, ...] = CPU_OPS
    weight_qdq_pair: bool = False  # float weight + Q + DQ (TensorRT) instead of an int8 weight + DQ
    quantize_outputs: bool = False  # Q/DQ on MatMul outputs too: one more rounding, no faster on ORT CPU


def resolve(step: Calibrated) -> StaticSettings:
    """The settings of a calibrated step: its options; for TensorRT symmetric, per-channel, full-range, on the
    inputs of MatMul/Gemm/Conv with Q/DQ weight pairs."""
    if isinstance(step, TrtInt8):
        return StaticSettings(step.calibration, step.calibration_size, step.percentile, per_channel=True,
                              reduce_range=False, symmetric_activations=True, op_types=TRT_OPS, weight_qdq_pair=True)
    return StaticSettings(step.calibration, step.calibration_size, step.percentile, getattr(step, "per_channel", True),
                          getattr(step, "reduce_range", False), getattr(step, "symmetric_activations", False))
