"""Typed pipeline configuration.

A YAML file is read with a safe loader and validated into frozen pydantic models. Unknown keys,
wrong types and missing files are rejected before any work starts; the error names the file, the
key path and what was expected. Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edgedistill.errors import ConfigError

TASKS = ("sentence-embedding", "sequence-classification")
LOSS_NAMES = ("embedding_mse", "embedding_cosine", "logits_kl")
QUANTIZE_MODES = ("dynamic-int8",)
BACKENDS = ("torch", "onnxruntime")

Task = Literal["sentence-embedding", "sequence-classification"]
PositiveInt = Annotated[int, Field(gt=0)]


def known(name: str, choices: tuple[str, ...], what: str) -> str:
    """``name`` if it is one of ``choices``, else ValueError with a did-you-mean hint."""
    if name not in choices:
        raise ValueError(f"unknown {what} '{name}'; {suggest(name, choices)}")
    return name


class StrictModel(BaseModel):
    """Base: frozen, and unknown keys are errors (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: str | Path | None, info: ValidationInfo, must_exist: bool = True) -> Path | None:
    """Resolve ``value`` against the config's folder (from the validation context) and check it exists."""
    if value is None:
        return None
    text = str(value)
    if text.startswith("pkg:"):
        from edgedistill.models.locate import resolve_pkg_path

        return resolve_pkg_path(text)
    path = Path(text).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if must_exist and not path.exists():
        raise ValueError(f"file not found: {path}")
    return path


def suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    """`unknown 'x'; did you mean 'y'?` — the hint part, or a list of the valid names."""
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(choices)


class TeacherConfig(StrictModel):
    """The model to distil from: a Hugging Face model folder, or ``pkg:package/subdir``."""

    source: Literal["huggingface"] = "huggingface"
    path: Path = Field(description="Model folder, or `pkg:<python package>/<subdir>` inside an installed package.")
    task: Task = Field("sentence-embedding", description="What the exported model outputs: embeddings or logits.")
    trust_remote_code: bool = Field(False, description="Allow custom model code from the folder (off by default).")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)


class FromTeacher(StrictModel):
    """A student made of a subset of the teacher's transformer layers (0-based, in order)."""

    layers: list[Annotated[int, Field(ge=0)]] = Field(
        min_length=1, description="Teacher layers to keep, e.g. [0, 3, 5]."
    )

    @field_validator("layers")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or v != sorted(v):
            raise ValueError("layers must be distinct and increasing, e.g. [0, 3, 5]")
        return v


class StudentConfig(StrictModel):
    from_teacher: FromTeacher


class TextSource(StrictModel):
    """Unlabelled text for distillation.

    ``text-lines``: one text per line; ``python-docs``: the built-in corpus made from the Python
    documentation and standard-library docstrings on this machine; ``stsb``: the sentences of an
    STS Benchmark file, scores ignored.
    """

    source: Literal["text-lines", "python-docs", "stsb"] = Field(description="Kind of text source (see above).")
    path: Path | None = None
    required: bool = Field(True, description="If false, a missing file is skipped with a warning instead of an error.")
    limit: PositiveInt | None = Field(None, description="Use at most this many texts from this source.")

    @model_validator(mode="before")
    @classmethod
    def _path(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        needs_path = data.get("source") in ("text-lines", "stsb")
        if needs_path and data.get("path") is None:
            raise ValueError(f"source '{data['source']}' needs a 'path'")
        if data.get("source") == "python-docs" and data.get("path") is not None:
            raise ValueError("source 'python-docs' takes no 'path'")
        if data.get("path") is not None:
            data = dict(data, path=resolve_path(data["path"], info, must_exist=data.get("required", True)))
        return data


class StsSource(StrictModel):
    """An STS Benchmark file (tab-separated: genre, file, year, id, score, sentence1, sentence2)."""

    source: Literal["stsb"] = "stsb"
    path: Path

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)


class DataConfig(StrictModel):
    train: list[TextSource] = Field(min_length=1)
    holdout: PositiveInt = Field(500, description="Texts held out of `train` to measure fidelity to the teacher.")
    eval: StsSource | None = Field(None, description="Scored pairs used to choose between students (dev split).")
    test: StsSource | None = Field(None, description="Scored pairs reported only, never used for choices (test split).")

    @field_validator("train", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


class LossSpec(StrictModel):
    name: str
    weight: float = Field(1.0, gt=0)
    temperature: float = Field(1.0, gt=0, description="Softmax temperature (logits_kl only).")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return known(v, LOSS_NAMES, "loss")


class DistillConfig(StrictModel):
    losses: list[LossSpec] = Field(default_factory=lambda: [LossSpec(name="embedding_mse")], min_length=1)
    steps: PositiveInt = Field(1500, description="Optimizer steps.")
    batch_size: PositiveInt = Field(64, description="Texts per step.")
    lr: float = Field(1.0e-4, gt=0, description="Peak AdamW learning rate (linear warm-up, then linear decay).")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Fraction of steps spent warming up the learning rate.")
    max_length: PositiveInt = Field(128, description="Token limit for training texts.")
    grad_clip: float = Field(1.0, gt=0)
    seed: int = Field(0, description="Seeds the student's batch order and dropout; same seed, same result on CPU.")
    checkpoint_every: PositiveInt = Field(100, description="Steps between resumable checkpoints.")
    keep_better: bool = Field(
        True, description="Keep the untrained student if distillation did not improve it on the eval data."
    )


class Range(StrictModel):
    min: PositiveInt
    max: PositiveInt

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            if len(data) != 2:
                raise ValueError("expected [min, max]")
            return {"min": data[0], "max": data[1]}
        return data

    @model_validator(mode="after")
    def _order(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class DynamicAxes(StrictModel):
    batch: Range = Range(min=1, max=64)
    sequence: Range = Range(min=1, max=256)


class ExportConfig(StrictModel):
    opset: int = Field(20, ge=17, le=23, description="ONNX opset of the export.")
    exporter: Literal["dynamo", "torchscript"] = Field("dynamo", description="torch.onnx exporter to use.")
    dynamic: DynamicAxes = DynamicAxes()
    atol: float = Field(1e-4, gt=0, description="Max absolute difference allowed between ONNX Runtime and torch.")
    min_cosine: float = Field(0.9999, gt=0, le=1, description="Min cosine per row between ONNX Runtime and torch.")


class QuantizeStep(StrictModel):
    mode: str = Field(description="Quantization mode: " + ", ".join(QUANTIZE_MODES) + ".")
    per_channel: bool = Field(
        True, description="One weight scale per output channel (per-tensor loses ~3% cosine on MiniLM)."
    )
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI where saturation hurts.")

    @field_validator("mode")
    @classmethod
    def _known(cls, v: str) -> str:
        return known(v, QUANTIZE_MODES, "quantization mode")


class Shape(StrictModel):
    batch: PositiveInt
    seq: PositiveInt

    @property
    def label(self) -> str:
        return f"{self.batch}x{self.seq}"


class BenchConfig(StrictModel):
    backends: list[Literal["torch", "onnxruntime"]] = ["torch", "onnxruntime"]
    shapes: list[Shape] = Field(default_factory=lambda: [Shape(batch=1, seq=128)], min_length=1)
    warmup: int = Field(5, ge=0, description="Untimed runs per shape before timing.")
    iterations: PositiveInt = Field(50, description="Timed runs per shape.")
    min_duration_s: float = Field(0.0, ge=0, description="Keep iterating until this much time has passed.")
    threads: PositiveInt | None = Field(None, description="Intra-op threads for every backend (default: all cores).")


class EvaluateConfig(StrictModel):
    batch_size: PositiveInt = 64
    max_length: PositiveInt = 128


class PipelineConfig(StrictModel):
    """The whole pipeline, from one YAML file."""

    name: str = Field(description="A name for the run, shown in the report.")
    teacher: TeacherConfig
    student: StudentConfig
    data: DataConfig
    distill: DistillConfig = DistillConfig()
    export: ExportConfig = ExportConfig()
    quantize: list[QuantizeStep] = Field(default_factory=lambda: [QuantizeStep(mode="dynamic-int8")])
    evaluate: EvaluateConfig = EvaluateConfig()
    bench: BenchConfig = BenchConfig()

    @model_validator(mode="after")
    def _shapes_in_range(self) -> PipelineConfig:
        for i, shape in enumerate(self.bench.shapes):
            check_shape_in_range(shape, self.export.dynamic, where=f"bench.shapes[{i}]")
        return self


def check_shape_in_range(shape: Shape, dynamic: DynamicAxes, where: str = "shape") -> None:
    """Raise ValueError if ``shape`` lies outside the exported dynamic range."""
    for axis, value, rng in (("batch", shape.batch, dynamic.batch), ("seq", shape.seq, dynamic.sequence)):
        if not rng.min <= value <= rng.max:
            raise ValueError(
                f"{where}: {axis} {value} is outside the exported range [{rng.min}, {rng.max}]; "
                "widen export.dynamic or pick another shape"
            )


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line: `source: key.path: message; key.path: message`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against the config reference in README)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


def parse_config(data: Any, base_dir: Path | None = None, source: str = "config") -> PipelineConfig:
    """Validate a dict into a :class:`PipelineConfig`.

    Raises:
        ConfigError: naming the key path and what was expected.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_config(path: str | Path) -> PipelineConfig:
    """Read a YAML file (safe loader) into a validated :class:`PipelineConfig`.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_config(data, base_dir=path.parent.resolve(), source=str(path))
