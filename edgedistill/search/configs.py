"""The pipeline config of one candidate: the searched config with its student, steps and precision filled in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edgedistill.config import DynamicInt8, FromTeacher, PipelineConfig, QuantizeStep, StudentConfig, WeightOnly
from edgedistill.config.base import GENERATIVE_TASK
from edgedistill.config.quantize import Fp16

Makes = tuple[str, Callable[[QuantizeStep], bool], QuantizeStep]  # precision, which step makes it, the default


def makers(task: str) -> tuple[Makes, ...]:
    """How each quantized precision is made for ``task``: a graph's dynamic INT8 / FP16, or a decoder's
    weight-only INT8 / INT4 (MatMulNBits)."""
    if task == GENERATIVE_TASK:
        return (("int8", lambda s: isinstance(s, WeightOnly) and s.bits == 8, WeightOnly(bits=8)),
                ("int4", lambda s: isinstance(s, WeightOnly) and s.bits == 4, WeightOnly()))
    return (("int8", lambda s: s.mode == "dynamic-int8", DynamicInt8()),
            ("fp16", lambda s: s.mode == "fp16", Fp16()))


def precision_steps(cfg: PipelineConfig, precisions: Sequence[str]) -> list[tuple[str, QuantizeStep]]:
    """(precision, quantize step) making each of ``precisions`` but fp32 (which needs none): the config's own step
    for it where it lists one (with its options), else the default one."""
    return [(precision, next((s for s in cfg.quantize if made_by(s)), default))
            for precision, made_by, default in makers(cfg.teacher.task) if precision in precisions]


def candidate_config(cfg: PipelineConfig, spec: FromTeacher, precisions: Sequence[str],
                     name: str | None = None) -> PipelineConfig:
    """``cfg`` for one student: ``spec`` instead of the search, quantized into ``precisions``; the config's own
    distillation, unchanged, so the chosen finalist's stages are the ones the pipeline would run (a proxy rung is
    that distillation paused part-way, :mod:`edgedistill.distill.pause`)."""
    update: dict[str, Any] = {"student": StudentConfig(from_teacher=spec),
                              "quantize": [s for _, s in precision_steps(cfg, precisions)]}
    if name is not None:
        update["name"] = name
    return cfg.model_copy(update=update)


def untrained_config(cfg: PipelineConfig) -> PipelineConfig:
    """``cfg`` with the export and fusion tolerances loosened to ``search.untrained_atol`` (never tightened), for
    the untrained candidates' shipping."""
    assert cfg.student.search is not None
    atol = cfg.student.search.untrained_atol
    update: dict[str, Any] = {}
    if cfg.export is not None:
        update["export"] = cfg.export.model_copy(update={"atol": max(cfg.export.atol, atol)})
    if cfg.fuse is not None:
        update["fuse"] = cfg.fuse.model_copy(update={"atol": max(cfg.fuse.atol, atol)})
    return cfg.model_copy(update=update)
