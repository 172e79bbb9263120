"""The whole pipeline from one YAML file: cross-stage checks, parsing and loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from edgedistill.config.base import GENERATIVE_LOSSES, GENERATIVE_TASK, StrictModel
from edgedistill.config.bench import BenchConfig, EvaluateConfig, Shape
from edgedistill.config.data import DataConfig
from edgedistill.config.distill import DistillConfig
from edgedistill.config.export import DynamicAxes, ExportConfig, FuseConfig
from edgedistill.config.quantize import DynamicInt8, QuantizeStep, WeightOnly, known_mode
from edgedistill.config.search import DECODER_PRECISIONS, DECODER_SEARCH_METRICS, ENCODER_PRECISIONS
from edgedistill.config.student import StudentConfig
from edgedistill.config.teacher import TeacherConfig
from edgedistill.errors import ConfigError


class PipelineConfig(StrictModel):
    """The whole pipeline, from one YAML file."""

    name: str = Field(description="A name for the run, shown in the report.")
    teacher: TeacherConfig
    student: StudentConfig
    data: DataConfig
    distill: DistillConfig = DistillConfig()
    export: ExportConfig | None = Field(
        default_factory=ExportConfig, description="ONNX export of the student; null (text-generation only) stops "
        "after distill and evaluates the torch student alone.")
    fuse: FuseConfig | None = Field(
        default_factory=FuseConfig, description="Attention fusion after export; null to ship the unfused export."
    )
    quantize: list[QuantizeStep] = Field(default_factory=lambda: [DynamicInt8()],  # type: ignore[arg-type]
                                         description="Quantization steps, one artifact each; [] for none.")

    @field_validator("quantize", mode="before")
    @classmethod
    def _modes(cls, v: Any) -> Any:
        return [known_mode(step) for step in v] if isinstance(v, list) else v
    evaluate: EvaluateConfig = EvaluateConfig()
    bench: BenchConfig = BenchConfig()

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        check_search(self)
        if self.export is None and self.teacher.task != "text-generation":
            raise ValueError("export: null stops a text-generation run after distill; every other task ships an "
                             "ONNX export, so give an export section or leave it out")
        for i, shape in enumerate(self.bench.shapes):
            check_shape_in_range(shape, (self.export or ExportConfig()).dynamic, where=f"bench.shapes[{i}]")
        check_losses_fit_task(self.teacher.task, self.distill)
        check_teacher_serves_losses(self.teacher, self.distill)
        self.data.check_task(self.teacher.task, needs_prompts=self.teacher.source != "recorded")
        copied = self.student.from_teacher
        if not self.teacher.white_box and copied is not None and copied.path is None:
            raise ValueError(
                f"student.from_teacher copies the teacher's layers, so it needs teacher.source 'huggingface', "
                f"not '{self.teacher.source}'; with a black-box teacher give student.from_teacher.path (a model to "
                "take the layers from), student.hf_config or student.factory"
            )
        own_tokenizer = copied is not None and copied.path is not None  # the student reads with that model's
        if self.teacher.source in ("recorded", "http") and self.teacher.tokenizer is None and not own_tokenizer:
            raise ValueError(
                f"teacher.tokenizer: a {self.teacher.source} teacher has no tokenizer for the student; give the "
                "folder of the tokenizer the student should read with"
            )
        return self


def check_search(cfg: PipelineConfig) -> None:
    """Raise ValueError for a student search the rest of the config cannot serve."""
    search = cfg.student.search
    if search is None:
        return
    if not cfg.teacher.white_box or cfg.teacher.source != "huggingface":
        raise ValueError(f"student.search derives students from the teacher's layers, so it needs teacher.source "
                         f"'huggingface', not '{cfg.teacher.source}'")
    if cfg.export is None:
        raise ValueError("student.search measures exported candidates, so it needs an export section")
    generative = cfg.teacher.task == GENERATIVE_TASK
    allowed = DECODER_PRECISIONS if generative else ENCODER_PRECISIONS
    other = [p for p in search.space.precision if p not in allowed]
    if other:
        raise ValueError(f"student.search.space.precision: {other[0]} is not shipped for task {cfg.teacher.task}; "
                         f"choose from {', '.join(allowed)}")
    if generative:
        check_decoder_search(cfg)
        return
    for i, shape in enumerate(search.shapes or []):
        check_shape_in_range(shape, cfg.export.dynamic, where=f"student.search.shapes[{i}]")


def check_decoder_search(cfg: PipelineConfig) -> None:
    """A text-generation search: an agreement metric (the teacher's own is 1 by definition), held-out prompts to
    score on, and weight-only steps that need no calibration (untrained candidates have no training prompts yet)."""
    search = cfg.student.search
    assert search is not None
    if search.metric is not None and search.metric not in DECODER_SEARCH_METRICS:
        raise ValueError(f"student.search.metric: '{search.metric}' for text-generation; the floor is a share of "
                         f"the teacher's agreement with itself: choose {', '.join(DECODER_SEARCH_METRICS)}")
    if search.shapes is not None:
        raise ValueError("student.search.shapes: a decoder is timed generating student.search.decode_tokens "
                         "tokens; remove shapes")
    if not cfg.data.heldout_prompts:
        raise ValueError("student.search scores decoders on held-out teacher answers: data.heldout_prompts must "
                         "be at least 1")
    for i, step in enumerate(cfg.quantize):
        if isinstance(step, WeightOnly) and (step.algorithm == "gptq" or step.budget is not None):
            raise ValueError(f"quantize[{i}]: a searched decoder ships with rtn or hqq weight-only steps (gptq and "
                             "budgets need the student's training prompts, which untrained candidates lack)")


def check_losses_fit_task(task: str, distill: DistillConfig) -> None:
    """Raise ValueError for a language-model loss on another task, or another task's loss on a language model."""
    generative = task == "text-generation"
    for i, spec in enumerate(distill.losses):
        if (spec.name in GENERATIVE_LOSSES) != generative and not (spec.name == "hidden_mse" and not generative):
            wanted = ("forward_kl, sparse_kl, seqkd, gkd or hidden_mse" if generative else
                      "embedding_mse, embedding_cosine, logits_kl or an intermediate-tensor loss")
            raise ValueError(f"distill.losses[{i}]: loss '{spec.name}' does not apply to task {task}; use {wanted}")


def check_teacher_serves_losses(teacher: TeacherConfig, distill: DistillConfig) -> None:
    """Raise ValueError if a loss needs intermediate tensors a black-box teacher cannot give."""
    if teacher.white_box:
        return
    for i, spec in enumerate(distill.losses):
        if spec.white_box and spec.language_model:
            raise ValueError(
                f"distill.losses[{i}]: loss '{spec.name}' needs the teacher's full next-token distribution, but "
                f"teacher.source '{teacher.source}' gives text and at most top log-probabilities; use sparse_kl "
                "(top-k log-probabilities) or seqkd (text only)")
        if spec.white_box:
            raise ValueError(
                f"distill.losses[{i}]: loss '{spec.name}' needs the teacher's hidden states/attention, but "
                f"teacher.source '{teacher.source}' is black-box (final outputs only); use embedding_mse, "
                "embedding_cosine or logits_kl, or a huggingface teacher"
            )


def check_shape_in_range(shape: Shape, dynamic: DynamicAxes, where: str = "shape") -> None:
    """Raise ValueError if ``shape`` lies outside the exported dynamic range."""
    for axis, value, rng in (("batch", shape.batch, dynamic.batch), ("seq", shape.seq, dynamic.sequence)):
        if value is not None and not rng.min <= value <= rng.max:
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


def config_path(path: str | Path) -> Path:
    """The config file ``path`` names: a file, or ``pkg:<package>/<file>`` (e.g. a shipped example,
    ``pkg:edgedistill/examples/minilm-cpu.yaml``).

    Raises:
        ConfigError: no such file (with the list of shipped examples).
    """
    from edgedistill.config.examples import examples_hint

    text = str(path)
    if text.startswith("pkg:"):
        from edgedistill.models.locate import resolve_pkg_path

        try:
            return resolve_pkg_path(text)
        except ValueError as err:
            raise ConfigError(f"config file not found: {err}; {examples_hint()}") from None
    if not Path(text).is_file():
        raise ConfigError(f"config file not found: {text}; {examples_hint()}")
    return Path(text)


def load_config(path: str | Path) -> PipelineConfig:
    """Read a YAML file (safe loader) into a validated :class:`PipelineConfig`.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate.
    """
    import yaml

    path = config_path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); save the config as UTF-8") \
            from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_config(data, base_dir=path.parent.resolve(), source=str(path))
