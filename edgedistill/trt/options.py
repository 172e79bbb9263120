"""What a user may choose for an engine build; everything left unset comes from the target."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edgedistill.config import StrictModel
from edgedistill.errors import ConfigError
from edgedistill.targets.schema import Precision


class DimRange(StrictModel):
    """Sizes one dynamic dimension takes: ``min <= opt <= max``; ``opt`` is what TensorRT tunes for."""

    min: int = Field(ge=0, description="0 only for a KV cache's past length (the prefill's empty past; TensorRT "
                     "takes empty tensors).")
    opt: int | None = Field(None, gt=0, description="Default: 1 for batch, min(max, 128) for sequence, else max.")
    max: int = Field(gt=0)

    @model_validator(mode="after")
    def _order(self) -> DimRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        if self.opt is not None and not self.min <= self.opt <= self.max:
            raise ValueError(f"opt {self.opt} is outside [min {self.min}, max {self.max}]")
        return self


class BuildOptions(StrictModel):
    """Engine build choices. Unset fields take the target's defaults."""

    precision: Precision | None = Field(None, description="Default: the target's default precision.")
    dims: dict[str, DimRange] = Field(
        default_factory=dict,
        description="Profile ranges by dimension name (batch, sequence); default: the ranges the ONNX was exported "
                    "with (metadata edgedistill.batch_range / sequence_range).",
    )
    strongly_typed: bool = Field(False, description="Types come from the graph (casts, Q/DQ); no precision flags.")
    workspace_mib: int | None = Field(None, gt=0, description="Default: the target's workspace_mib.")
    dla_core: int | None = Field(None, ge=0, description="Run on this DLA core, falling back to the GPU.")
    opt_level: int | None = Field(None, ge=0, le=5, description="Builder optimisation level (TensorRT >= 8.6).")
    timing_cache: Path | None = Field(None, description="Timing cache file, read if present and written after.")
    plugin_library: Path | None = Field(None, description="The fused-attention plugin library (.so).")
    tensorrt: str | None = Field(None, description="TensorRT version to plan for; default: the target's.")


def parse_dim_ranges(specs: list[str]) -> dict[str, dict[str, int]]:
    """``["sequence=16:64:128", "batch=1:8"]`` → ``{"sequence": {min, opt, max}, "batch": {min, max}}`` (CLI --dim).

    Raises:
        ConfigError: a spec that is not ``NAME=MIN:MAX`` or ``NAME=MIN:OPT:MAX`` with positive integers.
    """
    out: dict[str, dict[str, int]] = {}
    for spec in specs:
        name, _, sizes = spec.partition("=")
        try:
            values = [int(v) for v in sizes.split(":")]
        except ValueError:
            values = []
        if not name or len(values) not in (2, 3):
            raise ConfigError(f"--dim {spec!r}: expected NAME=MIN:MAX or NAME=MIN:OPT:MAX, e.g. sequence=1:128:256")
        keys = ("min", "max") if len(values) == 2 else ("min", "opt", "max")
        out[name] = dict(zip(keys, values, strict=True))
    return out


def parse_dim_sizes(specs: list[str]) -> dict[str, int]:
    """``["batch=1", "sequence=128"]`` → ``{"batch": 1, "sequence": 128}`` (CLI --dim of `estimate`).

    Raises:
        ConfigError: a spec that is not ``NAME=SIZE`` with a positive integer.
    """
    out = {}
    for spec in specs:
        name, _, size = spec.partition("=")
        if not name or not size.isdigit() or int(size) < 1:
            raise ConfigError(f"--dim {spec!r}: expected NAME=SIZE, e.g. sequence=128")
        out[name] = int(size)
    return out
