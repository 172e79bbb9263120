"""FitNets (Romero et al., 2015): a student feature map, through a 1×1 conv regressor, regresses onto the teacher's."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edgedistill.config import LossSpec
from edgedistill.distill.capture import ModelInfo, resolve
from edgedistill.distill.losses.registry import DistillLoss, Tensors, register
from edgedistill.errors import ConfigError, InputError


def feature_channels(model: nn.Module | None, path: str, where: str) -> int:
    """Output channels of the module at ``path``: its own, or its last Conv2d/BatchNorm2d's."""
    if model is None:
        raise ConfigError(f"{where}: fitnets needs a white-box model to hook '{path}'")
    module = resolve(model, f"module:{path}", where)
    convs = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    if not convs:
        raise ConfigError(f"{where}: module '{path}' has no Conv2d/BatchNorm2d, so its channel count is unknown")
    last = convs[-1]
    return last.out_channels if isinstance(last, nn.Conv2d) else last.num_features


@register("fitnets")
class FitNets(DistillLoss):
    def __init__(self, spec: LossSpec, student: ModelInfo, teacher: ModelInfo, where: str):
        super().__init__(spec, student, teacher, where)
        assert spec.student_module and spec.teacher_module  # checked by LossSpec
        self.keys = (f"module:{spec.student_module}", f"module:{spec.teacher_module}")
        c_s = feature_channels(student.model, spec.student_module, f"{where}.student_module")
        c_t = feature_channels(teacher.model, spec.teacher_module, f"{where}.teacher_module")
        self.regressor = nn.Conv2d(c_s, c_t, kernel_size=1)

    def student_keys(self) -> list[str]:
        return [self.keys[0]]

    def teacher_keys(self) -> list[str]:
        return [self.keys[1]]

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        s, t = self.regressor(student[self.keys[0]]), teacher[self.keys[1]]  # (B, C_t, H, W) each
        if s.shape[-2:] != t.shape[-2:]:
            raise InputError(f"{self.where}: feature maps differ in size (student {tuple(s.shape[-2:])}, "
                             f"teacher {tuple(t.shape[-2:])}); pick modules at the same resolution")
        return F.mse_loss(s, t)
