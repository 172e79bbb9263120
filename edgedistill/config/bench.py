"""Benchmark shapes and timing settings, and evaluation batch settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from edgedistill.config.base import PositiveInt, StrictModel


class Shape(StrictModel):
    """A benchmark input size: ``batch`` x ``seq`` tokens for text models, ``batch`` images (no ``seq``)."""

    batch: PositiveInt
    seq: PositiveInt | None = Field(None, description="Tokens per input (text models); none for image models.")

    @property
    def label(self) -> str:
        return f"{self.batch}x{self.seq}" if self.seq is not None else str(self.batch)


class BenchConfig(StrictModel):
    backends: list[Literal["torch", "onnxruntime", "tensorrt"]] = ["torch", "onnxruntime"]
    shapes: list[Shape] = Field(default_factory=lambda: [Shape(batch=1, seq=128)], min_length=1)
    warmup: int = Field(5, ge=0, description="Untimed runs per shape before timing.")
    warmup_s: float = Field(0.0, ge=0, description="Keep warming up until this much time has passed.")
    iterations: PositiveInt = Field(50, description="Timed runs per shape.")
    min_duration_s: float = Field(0.0, ge=0, description="Keep iterating until this much time has passed.")
    threads: PositiveInt | None = Field(None, description="Intra-op threads for every backend (default: all cores).")
    inter_op_threads: PositiveInt = Field(1, description="Inter-op threads for every backend (pinned, recorded).")
    compare: Literal["interleaved", "sequential"] = Field(
        "interleaved", description="Several models: time them A B A B … per round so drift cancels, or one by one."
    )
    rounds: PositiveInt = Field(10, description="Interleaved rounds per shape.")
    sessions: PositiveInt = Field(
        1, description="Fresh sessions per model, called in turn and pooled: averages out each session's "
        "memory-layout luck, so consecutive runs agree more closely (costs memory and load time; use with "
        "threads: 1, as idle ONNX Runtime thread pools spin and steal cores).")
    round_warmup: int = Field(
        1, ge=0, description="Untimed calls opening each model's turn in a round (the switch leaves caches cold)."
    )
    device: str = Field("cpu", description="torch device: cpu or cuda[:N].")
    providers: list[Literal["cpu", "cuda", "tensorrt"]] = Field(
        ["cpu"], description="ONNX Runtime execution providers, in priority order."
    )
    torch_compile: bool = Field(False, description="Run torch models through torch.compile.")
    cuda_graphs: bool = Field(False, description="Replay a captured CUDA graph per shape (torch on CUDA).")
    power: Literal["auto", "on", "off"] = Field("auto", description="Sample tegrastats (auto: where present).")

    @field_validator("power", mode="before")
    @classmethod
    def _yaml_switch(cls, v: Any) -> Any:
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v  # YAML reads `off` as false
    power_s: float = Field(5.0, gt=0, description="Energy window per model and shape (s).")
    idle_s: float = Field(3.0, gt=0, description="Idle baseline before energy windows (s).")


class EvaluateConfig(StrictModel):
    batch_size: PositiveInt = 64
    max_length: PositiveInt = 128
