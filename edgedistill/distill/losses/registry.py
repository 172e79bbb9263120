"""The registry of named losses and the weighted set a training run uses."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgedistill.config import LossSpec
from edgedistill.distill.capture import ModelInfo
from edgedistill.errors import ConfigError

Tensors = dict[str, torch.Tensor]

class DistillLoss(nn.Module):
    """A named loss: which tensors it needs from each model, and the loss computed from them.

    Subclasses check at construction (setup time) that the models can give what they need, and may own
    learned parameters (projections, regressors) that train with the student.
    """

    def __init__(self, spec: LossSpec, student: ModelInfo, teacher: ModelInfo, where: str):
        super().__init__()
        self.spec = spec
        self.where = where

    def student_keys(self) -> list[str]:
        return ["output"]

    def teacher_keys(self) -> list[str]:
        return ["output"]

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        raise NotImplementedError

LOSSES: dict[str, type[DistillLoss]] = {}

def register(name: str) -> Callable[[type[DistillLoss]], type[DistillLoss]]:
    def wrap(cls: type[DistillLoss]) -> type[DistillLoss]:
        LOSSES[name] = cls
        return cls

    return wrap

class LossSet(nn.Module):
    """The configured losses, weighted and summed; its parameters train alongside the student."""

    def __init__(self, specs: list[LossSpec], student: ModelInfo, teacher: ModelInfo):
        super().__init__()
        for i, spec in enumerate(specs):
            if spec.name not in LOSSES:
                raise ConfigError(f"distill.losses[{i}].name: loss '{spec.name}' is not registered")
            if spec.white_box and not teacher.white_box:
                raise ConfigError(f"distill.losses[{i}]: loss '{spec.name}' needs intermediate tensors, but the "
                                  f"teacher '{teacher.name}' is black-box (final outputs only)")
        self.parts = nn.ModuleList(
            LOSSES[s.name](s, student, teacher, f"distill.losses[{i}]") for i, s in enumerate(specs)
        )

    def student_keys(self) -> list[str]:
        return sorted({k for p in self.parts for k in p.student_keys()})  # type: ignore[operator]

    def teacher_keys(self) -> list[str]:
        return sorted({k for p in self.parts for k in p.teacher_keys()})  # type: ignore[operator]

    @property
    def white_box(self) -> bool:
        return self.teacher_keys() != ["output"]

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        total = torch.zeros((), device=student["output"].device)
        for part in self.parts:
            total = total + part.spec.weight * part(student, teacher, batch).float()  # type: ignore[union-attr]
        return total
