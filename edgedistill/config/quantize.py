"""Quantization steps and the quality budget a quantized model may spend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgedistill.config.base import QUANTIZE_MODES, QUANTIZE_PRESETS, PositiveInt, StrictModel, known


class QuantizeBudget(StrictModel):
    """The quality a quantized model may lose, measured against the float model on the evaluation texts."""

    metric: Literal["fidelity_cosine", "sts_drop"] = Field(
        description="fidelity_cosine: mean cosine to the float model's embeddings; "
        "sts_drop: STS Spearman points lost against the float model.")
    min: float | None = Field(None, description="Lowest fidelity_cosine allowed (e.g. 0.995).")
    max: float | None = Field(None, ge=0, description="Most STS points that may be lost (e.g. 0.3).")

    @model_validator(mode="after")
    def _bound(self) -> QuantizeBudget:
        need = "min" if self.metric == "fidelity_cosine" else "max"
        if getattr(self, need) is None:
            raise ValueError(f"budget metric {self.metric} needs '{need}'")
        return self


class QuantizeStep(StrictModel):
    mode: str = Field(description="Quantization mode: " + ", ".join(QUANTIZE_MODES) + ".")
    preset: str | None = Field(
        None, description="Target preset for static INT8: " + ", ".join(QUANTIZE_PRESETS)
        + " (fills the options below that are not set).")
    per_channel: bool = Field(
        True, description="One weight scale per output channel (per-tensor loses ~3% cosine on MiniLM)."
    )
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI where saturation hurts.")
    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="Static INT8: how activation ranges are chosen from the calibration texts.")
    calibration_size: PositiveInt = Field(256, description="Static INT8: number of calibration texts.")
    percentile: float = Field(99.999, gt=90, le=100, description="Percentile kept by 'percentile' calibration.")
    symmetric_activations: bool = Field(False, description="Static INT8: int8 activations with zero point 0.")
    exclude: list[str] = Field(default_factory=list, description="Node names or groups kept in float.")
    group_by: Literal["matmul", "layer"] = Field(
        "matmul", description="Unit of the sensitivity analysis and of the budget's float fallbacks.")
    sensitivity: bool = Field(False, description="Write a per-group sensitivity table and plot.")
    budget: QuantizeBudget | None = Field(None, description="Keep sensitive groups in float until this holds.")
    qad_steps: PositiveInt = Field(300, description="qad-int8: optimizer steps of fake-quantized distillation.")
    qad_lr: float = Field(2.0e-5, gt=0, description="qad-int8: peak AdamW learning rate (weights, activation scales).")
    qad_batch_size: PositiveInt = Field(32, description="qad-int8: texts per step.")
    keep_io_fp32: bool = Field(True, description="FP16: inputs and outputs stay FP32 (casts inserted).")
    fp32_ops: list[str] = Field(
        default_factory=lambda: ["LayerNormalization", "Softmax", "ReduceSum", "ReduceMean", "ReduceL2", "Pow",
                                 "Sqrt", "Erf"],
        description="FP16: op types kept in FP32 (numerically fragile).")

    @field_validator("mode")
    @classmethod
    def _known(cls, v: str) -> str:
        return known(v, QUANTIZE_MODES, "quantization mode")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        return None if v is None else known(v, QUANTIZE_PRESETS, "quantization preset")

    @property
    def label(self) -> str:
        """Folder and artifact suffix: the mode, then the preset and calibration when they matter."""
        parts = [self.mode]
        if self.mode == "static-int8":
            parts += [self.preset or "default", self.calibration]
        if self.budget is not None:
            parts.append("budget")
        return "-".join(parts)
