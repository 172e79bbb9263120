"""Hidden-state MSE between mapped layers, with a learned projection when the widths differ (TinyBERT)."""

from __future__ import annotations

import torch
from torch import nn

from edgedistill.config import LossSpec
from edgedistill.distill.capture import ModelInfo
from edgedistill.distill.layer_map import layer_pairs
from edgedistill.distill.losses.registry import DistillLoss, Tensors, register
from edgedistill.errors import ConfigError


def masked_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE over the non-padding tokens: student, teacher (B, S, H), mask (B, S) of 0/1."""
    m = mask.unsqueeze(-1).to(student.dtype)  # (B, S, 1)
    return ((student - teacher) ** 2 * m).sum() / (m.sum() * student.shape[-1]).clamp(min=1)


def require_white_box(info: ModelInfo, where: str, what: str) -> None:
    if not info.layers:
        raise ConfigError(f"{where}: {what} needs a transformer with layers; '{info.name}' exposes none")


@register("hidden_mse")
class HiddenMSE(DistillLoss):
    """Σ over mapped pairs of masked MSE(W·h_student + b, h_teacher)."""

    mask_key = "attention_mask"  # every real token (a causal LM's prompt too), not only response positions

    def __init__(self, spec: LossSpec, student: ModelInfo, teacher: ModelInfo, where: str):
        super().__init__(spec, student, teacher, where)
        require_white_box(student, where, "hidden_mse")
        require_white_box(teacher, where, "hidden_mse")
        self.pairs = layer_pairs(spec.layers, student.layers, teacher.layers, where)
        if student.hidden != teacher.hidden and not spec.projection:
            raise ConfigError(f"{where}: hidden widths differ (student {student.hidden}, teacher {teacher.hidden}) "
                              "and projection is off; set projection: true")
        same = student.hidden == teacher.hidden
        self.projections = nn.ModuleList(
            nn.Identity() if same else nn.Linear(student.hidden, teacher.hidden) for _ in self.pairs
        )

    def student_keys(self) -> list[str]:
        return [f"hidden.{s}" for s, _ in self.pairs]

    def teacher_keys(self) -> list[str]:
        return [f"hidden.{t}" for _, t in self.pairs]

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        mask = batch["attention_mask"]
        terms = [masked_mse(proj(student[f"hidden.{s}"]), teacher[f"hidden.{t}"], mask)
                 for proj, (s, t) in zip(self.projections, self.pairs)]
        return torch.stack(terms).sum()
