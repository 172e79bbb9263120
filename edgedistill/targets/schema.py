"""The schema of a deployment target (``edgedistill/targets/devices/<name>.yaml``).

A target describes one device: its GPU (or CPU), peak dense throughput per precision, memory, DLA cores,
the JetPack / TensorRT it ships with, and the power modes it offers. Every number carries its source in
``sources`` (a validator refuses a number without one), so a reader can check where it came from.

Throughput is *dense* (no 2:4 sparsity), in TFLOPS (TOPS for int8), at the highest clock the device offers
(so estimates built on it are lower bounds on latency).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from edgedistill.config import StrictModel

Precision = Literal["fp32", "tf32", "fp16", "bf16", "int8", "fp8", "fp4"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8", "fp4")
Kind = Literal["jetson", "gpu", "cpu"]
Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]

# Fields whose value is a measured or published number: each must name its source when set.
SOURCED_FIELDS = (
    "compute_capability", "sm_count", "gpu_max_mhz", "cpu_cores", "cpu_max_mhz", "peak", "memory_gib",
    "memory_bandwidth_gbs", "dla_cores", "jetpack", "tensorrt", "power_modes",
)


class Peak(StrictModel):
    """Peak dense throughput in TFLOPS (TOPS for int8); ``None`` where the hardware lacks the type."""

    fp32: Positive
    tf32: Positive | None = None
    fp16: Positive | None = None
    bf16: Positive | None = None
    int8: Positive | None = None
    fp8: Positive | None = None
    fp4: Positive | None = None

    def of(self, precision: str) -> float | None:
        value: float | None = getattr(self, precision)
        return value


class PowerMode(StrictModel):
    name: str
    watts: Positive | None = Field(None, description="Power budget of the mode (Jetson nvpmodel).")
    gpu_max_mhz: PositiveInt | None = Field(None, description="GPU clock cap in this mode, where published.")


class Target(StrictModel):
    """One device that models are deployed to."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Short name, equal to the file's stem.")
    display_name: str
    kind: Kind
    architecture: str = Field(description="GPU architecture (Ampere, Hopper, ...) or CPU micro-architecture.")
    reference: str | None = Field(None, description="CPU targets: the reference part whose numbers are used.")
    compute_capability: str | None = Field(None, pattern=r"^\d+\.\d+$")
    sm_count: PositiveInt | None = None
    gpu_max_mhz: PositiveInt | None = None
    cpu_cores: PositiveInt | None = None
    cpu_max_mhz: PositiveInt | None = None
    isa: list[str] = Field(default_factory=list, description="CPU vector extensions (avx2, avx512_vnni, neon, ...).")
    peak: Peak
    memory_gib: Positive
    memory_bandwidth_gbs: Positive = Field(description="Peak DRAM bandwidth in GB/s (10^9 bytes/s).")
    dla_cores: int = Field(0, ge=0)
    jetpack: str | None = None
    tensorrt: str | None = Field(None, pattern=r"^\d+\.\d+(\.\d+)*$", description="TensorRT version it ships with.")
    precisions: list[Precision] = Field(min_length=1)
    default_precision: Precision
    workspace_mib: PositiveInt | None = Field(None, description="Default TensorRT workspace limit.")
    dla_by_default: bool = False
    power_modes: list[PowerMode] = Field(default_factory=list)
    sources: dict[str, str] = Field(description="For each numeric field: where the value comes from.")
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        check_precisions(self)
        check_gpu_fields(self)
        check_sources(self)
        return self

    @property
    def has_gpu(self) -> bool:
        return self.kind != "cpu"

    @property
    def cc(self) -> tuple[int, int] | None:
        if self.compute_capability is None:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


def check_precisions(t: Target) -> None:
    if t.default_precision not in t.precisions:
        raise ValueError(f"default_precision '{t.default_precision}' is not in precisions {t.precisions}")
    missing = [p for p in t.precisions if t.peak.of(p) is None]
    if missing:
        raise ValueError(f"precisions {missing} have no peak throughput; add peak.{missing[0]} or drop them")
    if "fp8" in t.precisions and t.cc is not None and t.cc < (8, 9):
        raise ValueError(f"fp8 needs compute capability >= 8.9; this GPU is {t.compute_capability}")


def check_gpu_fields(t: Target) -> None:
    if t.has_gpu:
        absent = [f for f in ("compute_capability", "sm_count", "gpu_max_mhz", "tensorrt") if getattr(t, f) is None]
        if absent:
            raise ValueError(f"a {t.kind} target needs {', '.join(absent)}")
    elif t.cpu_cores is None or t.cpu_max_mhz is None or t.reference is None:
        raise ValueError("a cpu target needs cpu_cores, cpu_max_mhz and reference")
    if t.dla_cores and t.kind != "jetson":
        raise ValueError("dla_cores is only for jetson targets")
    if t.dla_by_default and not t.dla_cores:
        raise ValueError("dla_by_default needs dla_cores > 0")


def check_sources(t: Target) -> None:
    unsourced = [f for f in SOURCED_FIELDS if getattr(t, f) not in (None, [], 0) and f not in t.sources]
    if unsourced:
        raise ValueError(f"no source for {', '.join(unsourced)}; add sources.{unsourced[0]}")
    stray = sorted(set(t.sources) - set(Target.model_fields))
    if stray:
        raise ValueError(f"sources names unknown fields {stray}")
