"""Typed pipeline configuration.

A YAML file is read with a safe loader and validated into frozen pydantic models. Unknown keys,
wrong types and missing files are rejected before any work starts; the error names the file, the
key path and what was expected. Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

from edgedistill.config.base import (
    BACKENDS,
    LOSS_NAMES,
    LOSS_OPTIONS,
    QUANTIZE_MODES,
    TABLE_SOURCES,
    TASKS,
    TEACHER_SOURCES,
    WHITE_BOX_LOSSES,
    PositiveInt,
    StrictModel,
    Task,
    known,
    resolve_path,
    suggest,
)
from edgedistill.config.bench import BenchConfig, EvaluateConfig, Shape
from edgedistill.config.data import DataConfig, StsSource, TextSource
from edgedistill.config.distill import DistillConfig, LayerPair, LossSpec
from edgedistill.config.export import DynamicAxes, ExportConfig, FuseConfig, Range
from edgedistill.config.pipeline import (
    PipelineConfig,
    check_shape_in_range,
    check_teacher_serves_losses,
    format_validation_error,
    load_config,
    parse_config,
)
from edgedistill.config.quantize import (
    MODES,
    PRESETS,
    Calibrated,
    CpuInt8,
    DynamicInt8,
    Fp16,
    QadInt8,
    QuantizeBudget,
    QuantizeStep,
    StaticInt8,
    Step,
    TrtInt8,
    WeightOnly,
    WeightOnlyBudget,
    quantize_step,
)
from edgedistill.config.search import SearchConfig, SearchSpace
from edgedistill.config.student import FromTeacher, StudentConfig
from edgedistill.config.teacher import HttpTeacherConfig, TeacherConfig

__all__ = [
    "BACKENDS",
    "BenchConfig",
    "Calibrated",
    "CpuInt8",
    "DynamicInt8",
    "Fp16",
    "WeightOnly",
    "MODES",
    "PRESETS",
    "QadInt8",
    "StaticInt8",
    "Step",
    "TrtInt8",
    "quantize_step",
    "DataConfig",
    "DistillConfig",
    "DynamicAxes",
    "EvaluateConfig",
    "ExportConfig",
    "FromTeacher",
    "SearchConfig",
    "SearchSpace",
    "FuseConfig",
    "HttpTeacherConfig",
    "LOSS_NAMES",
    "LOSS_OPTIONS",
    "LayerPair",
    "LossSpec",
    "PipelineConfig",
    "PositiveInt",
    "QUANTIZE_MODES",
    "QuantizeBudget",
    "WeightOnlyBudget",
    "QuantizeStep",
    "Range",
    "Shape",
    "StrictModel",
    "StsSource",
    "StudentConfig",
    "TABLE_SOURCES",
    "TASKS",
    "TEACHER_SOURCES",
    "Task",
    "TeacherConfig",
    "TextSource",
    "WHITE_BOX_LOSSES",
    "check_shape_in_range",
    "check_teacher_serves_losses",
    "format_validation_error",
    "known",
    "load_config",
    "parse_config",
    "resolve_path",
    "suggest",
]
