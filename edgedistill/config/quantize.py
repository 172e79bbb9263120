"""Quantization steps, one config per mode (``mode`` picks it), and the quality budget a quantized model may spend.

Static-INT8 presets are named constructors (``StaticInt8.avx512_vnni()``) and, in YAML, ``preset: avx2``: a preset
fills the options the step does not set; options set in the config always win. Why each preset is what it is
(ONNX Runtime's quantization guide):

- ``avx2`` / ``avx512``: no VNNI, so u8×s8 products go through ``VPMADDUBSW``, which can saturate int16
  intermediates; 7-bit weights (``reduce_range``) avoid it. Activations u8 asymmetric.
- ``avx512-vnni``: ``VPDPBUSD`` accumulates u8×s8 straight into int32, full 8-bit range is safe.
- ``arm64``: ARM kernels prefer s8 symmetric activations.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from edgedistill.config.base import QUANTIZE_MODES, PositiveInt, StrictModel, known

PRESETS: dict[str, dict[str, Any]] = {
    "avx2": {"reduce_range": True},
    "avx512": {"reduce_range": True},
    "avx512-vnni": {"reduce_range": False},
    "arm64": {"symmetric_activations": True},
}
FP16_FP32_OPS = ["LayerNormalization", "Softmax", "ReduceSum", "ReduceMean", "ReduceL2", "Pow", "Sqrt", "Erf"]


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


class WeightOnlyBudget(StrictModel):
    """The quality a weight-only model may lose, in the Task's metric: teacher-forced agreement with the teacher on
    its answers, against the float model. Groups the budget needs are raised to ``keep``."""

    metric: Literal["top1_kept", "kl_rise"] = Field(
        description="top1_kept: the quantized model's top-1 agreement with the teacher over the float model's; "
        "kl_rise: its KL to the teacher minus the float model's.")
    min: float | None = Field(None, gt=0, le=1, description="Lowest top1_kept allowed (e.g. 0.98).")
    max: float | None = Field(None, ge=0, description="Most KL (nats/token) that may be added (e.g. 0.02).")
    group_by: Literal["layer", "kind", "matmul"] = Field(
        "layer", description="Unit raised together: a transformer layer, one projection in every layer "
        "(kind: mlp/down_proj), or one MatMul.")
    keep: Literal["int8", "float"] = Field("int8", description="Precision of the groups the budget raises.")

    @model_validator(mode="after")
    def _bound(self) -> WeightOnlyBudget:
        need = "min" if self.metric == "top1_kept" else "max"
        if getattr(self, need) is None:
            raise ValueError(f"budget metric {self.metric} needs '{need}'")
        return self


class Step(StrictModel):
    """What every quantization step has: its mode and the label of its folder and artifact."""

    mode: str

    @property
    def label(self) -> str:
        """Folder and artifact suffix: the mode (static INT8 adds its preset and calibration; a budget, 'budget')."""
        return self.mode


class DynamicInt8(Step):
    """INT8 weights, activations quantized at run time (ONNX Runtime's MatMulInteger): no calibration data."""

    mode: Literal["dynamic-int8"] = "dynamic-int8"
    per_channel: bool = Field(
        True, description="One weight scale per output channel (per-tensor loses ~3% cosine on MiniLM).")
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI where saturation hurts.")


class Calibrated(Step):
    """Static quantization: activation ranges from calibration data, and the search over what stays float."""

    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="How activation ranges are chosen from the calibration texts.")
    calibration_size: PositiveInt = Field(256, description="Number of calibration texts.")
    percentile: float = Field(99.999, gt=90, le=100, description="Percentile kept by 'percentile' calibration.")
    exclude: list[str] = Field(default_factory=list, description="Node names or groups kept in float.")
    group_by: Literal["matmul", "layer"] = Field(
        "matmul", description="Unit of the sensitivity analysis and of the budget's float fallbacks.")
    sensitivity: bool = Field(False, description="Write a per-group sensitivity table and plot.")
    budget: QuantizeBudget | None = Field(None, description="Keep sensitive groups in float until this holds.")

    @property
    def label(self) -> str:
        return self.mode + ("-budget" if self.budget is not None else "")


class CpuInt8(Calibrated):
    """INT8 QDQ for ONNX Runtime on a CPU, with a target preset."""

    preset: str | None = Field(None, description="Target preset: " + ", ".join(PRESETS)
                               + " (fills the options below that are not set).")
    per_channel: bool = Field(True, description="One weight scale per output channel.")
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI where saturation hurts.")
    symmetric_activations: bool = Field(False, description="int8 activations with zero point 0.")

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            known(str(data["preset"]), tuple(PRESETS), "quantization preset")
            data = {**PRESETS[data["preset"]], **data}  # what the step sets wins
        return data


class StaticInt8(CpuInt8):
    """Static INT8 in QDQ format: activation ranges from calibration texts, weights INT8 per channel."""

    mode: Literal["static-int8"] = "static-int8"

    @property
    def label(self) -> str:
        return "-".join([self.mode, self.preset or "default", self.calibration]) + (
            "-budget" if self.budget is not None else "")

    @classmethod
    def for_preset(cls, preset: str, **options: Any) -> StaticInt8:
        """The step a preset makes, with ``options`` on top."""
        return cls.model_validate({"preset": preset, **options})

    @classmethod
    def avx2(cls, **options: Any) -> StaticInt8:
        return cls.for_preset("avx2", **options)

    @classmethod
    def avx512(cls, **options: Any) -> StaticInt8:
        return cls.for_preset("avx512", **options)

    @classmethod
    def avx512_vnni(cls, **options: Any) -> StaticInt8:
        return cls.for_preset("avx512-vnni", **options)

    @classmethod
    def arm64(cls, **options: Any) -> StaticInt8:
        return cls.for_preset("arm64", **options)


class TrtInt8(Calibrated):
    """Explicit INT8 QDQ for TensorRT: symmetric activations and weights, per-channel weights, Q/DQ on the inputs
    of MatMul/Gemm/Conv only (TensorRT takes nothing else, so these are not options)."""

    mode: Literal["trt-int8"] = "trt-int8"


class QadInt8(CpuInt8):
    """Quantization-aware distillation: fake-quantized training from MinMax ranges, then QDQ with the learned
    scales (calibration is always MinMax: the ranges are learned)."""

    mode: Literal["qad-int8"] = "qad-int8"
    calibration: Literal["minmax"] = Field("minmax", description="Always minmax: QAD learns the ranges from there.")
    qad_steps: PositiveInt = Field(300, description="Optimizer steps of fake-quantized distillation.")
    qad_lr: float = Field(2.0e-5, gt=0, description="Peak AdamW learning rate (weights, activation scales).")
    qad_batch_size: PositiveInt = Field(32, description="Texts per step.")


class Fp16(Step):
    """FP16 weights and arithmetic, numerically fragile ops kept in FP32."""

    mode: Literal["fp16"] = "fp16"
    keep_io_fp32: bool = Field(True, description="Inputs and outputs stay FP32 (casts inserted).")
    fp32_ops: list[str] = Field(default_factory=lambda: list(FP16_FP32_OPS),
                                description="Op types kept in FP32 (numerically fragile).")


class WeightOnly(Step):
    """INT4 / INT8 weights in blocks, activations float (ONNX Runtime's MatMulNBits): what decoders ship with, since
    decode reads every weight once per token. RTN needs no data; GPTQ calibrates on prompts; HQQ optimises each
    block's scale and zero point without data."""

    mode: Literal["weight-only"] = "weight-only"
    bits: Literal[4, 8] = Field(4, description="Bits per weight (8: RTN only).")
    algorithm: Literal["rtn", "hqq", "gptq"] = Field("rtn", description="rtn: round to nearest; hqq: half-quadratic "
                                                     "(4-bit); gptq: error-compensating, calibrated (4-bit).")
    block_size: Literal[16, 32, 64, 128, 256] = Field(32, description="Weights per scale along the input dimension "
                                                      "(must divide every quantized MatMul's input size).")
    symmetric: bool = Field(True, description="Zero point fixed at the middle (rtn); false adds one per block.")
    accuracy_level: Literal[0, 1, 2, 3, 4] = Field(0, description="MatMulNBits compute type: 0 unset (fp32), "
                                                   "1 fp32, 2 fp16, 3 bf16, 4 int8 activations (fastest on CPU; "
                                                   "can flip the top token on small models, onnxruntime #29849).")
    lm_head: Literal["quantize", "int8", "float"] = Field(
        "quantize", description="The output projection (for tied embeddings, a transposed copy of the table): "
        "quantize (with `bits`), int8 (8 bits, whatever `bits` says), float.")
    embedding: Literal["float", "quantize"] = Field("float", description="The input embedding's Gather "
                                                    "(quantize: GatherBlockQuantized, rtn only).")
    calibration_size: PositiveInt = Field(32, description="Calibration prompts (gptq).")
    budget: WeightOnlyBudget | None = Field(None, description="Raise the most sensitive groups to `keep` "
                                            "precision until this holds (needs the teacher's answers).")

    @property
    def label(self) -> str:
        acc = f"-acc{self.accuracy_level}" if self.accuracy_level else ""
        zero = "" if self.symmetric else "-asym"
        head = {"quantize": "", "int8": "-h8", "float": "-hfp"}[self.lm_head]
        budget = "-budget" if self.budget is not None else ""
        return f"int{self.bits}-{self.algorithm}-b{self.block_size}{acc}{zero}{head}{budget}"

    @model_validator(mode="after")
    def _algorithm_bits(self) -> WeightOnly:
        if self.bits == 8 and self.algorithm != "rtn":
            raise ValueError(f"algorithm {self.algorithm} quantizes to 4 bits only; use algorithm: rtn for 8")
        if self.embedding == "quantize" and self.algorithm != "rtn":
            raise ValueError("embedding: quantize needs algorithm: rtn")
        return self


QuantizeStep = Annotated[DynamicInt8 | StaticInt8 | TrtInt8 | QadInt8 | Fp16 | WeightOnly, Field(discriminator="mode")]
MODES: dict[str, type[Step]] = {"dynamic-int8": DynamicInt8, "static-int8": StaticInt8, "trt-int8": TrtInt8,
                                "qad-int8": QadInt8, "fp16": Fp16, "weight-only": WeightOnly}
assert set(MODES) == set(QUANTIZE_MODES)
STEP_ADAPTER: TypeAdapter[Any] = TypeAdapter(QuantizeStep)


AnyStep = DynamicInt8 | StaticInt8 | TrtInt8 | QadInt8 | Fp16 | WeightOnly


def quantize_step(**values: Any) -> AnyStep:
    """A validated step from its fields (``mode`` picks the config), as YAML gives them.

    Raises:
        pydantic.ValidationError: an unknown mode, or an option the mode does not take.
    """
    step: AnyStep = STEP_ADAPTER.validate_python(known_mode(values))
    return step


def known_mode(values: Any) -> Any:
    """``values``, after checking its ``mode`` is a quantization mode (with a did-you-mean hint)."""
    if isinstance(values, dict):
        known(str(values.get("mode")), QUANTIZE_MODES, "quantization mode")
    return values
