"""The pipeline config of one candidate: the searched config with its student, steps and precision filled in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgedistill.config import DynamicInt8, FromTeacher, PipelineConfig, QuantizeStep, StudentConfig
from edgedistill.config.quantize import Fp16


def precision_steps(cfg: PipelineConfig, precisions: Sequence[str]) -> list[QuantizeStep]:
    """Quantize steps making ``precisions`` (fp32 needs none): the config's own dynamic-int8 / fp16 step where it
    lists one (with its options), else the default one."""
    steps: list[QuantizeStep] = []
    for precision, mode, default in (("int8", "dynamic-int8", DynamicInt8()), ("fp16", "fp16", Fp16())):
        if precision in precisions:
            steps.append(next((s for s in cfg.quantize if s.mode == mode), default))
    return steps


def candidate_config(cfg: PipelineConfig, spec: FromTeacher, precisions: Sequence[str], steps: int | None = None,
                     name: str | None = None) -> PipelineConfig:
    """``cfg`` for one student: ``spec`` instead of the search, quantized into ``precisions``. ``steps``: a proxy
    distillation (that many steps, no keep-better comparison); none: the config's own distillation, unchanged,
    so the chosen finalist's stages are the ones the pipeline would run."""
    update: dict[str, Any] = {"student": StudentConfig(from_teacher=spec),
                              "quantize": precision_steps(cfg, precisions)}
    if name is not None:
        update["name"] = name
    if steps is not None:
        update["distill"] = cfg.distill.model_copy(update={"steps": steps, "keep_better": False,
                                                           "eval_every": None})
    return cfg.model_copy(update=update)
