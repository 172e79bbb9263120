"""MiniLM self-attention relation transfer (Wang et al., MiniLM v1/v2).

For each of Q, K, V the relation is softmax(X Xᵀ / √d_r) over ``relation_heads`` heads made by splitting the
projection's full width — independent of either model's attention-head count, so students of any width learn
from any teacher. The loss is KL(teacher relation ‖ student relation), summed over the chosen relations.
"""

from __future__ import annotations

import torch

from edgedistill.config import LossSpec
from edgedistill.distill.capture import ModelInfo
from edgedistill.distill.layer_map import layer_pairs
from edgedistill.distill.losses.attention import attention_scores, distribution_kl
from edgedistill.distill.losses.hidden import require_white_box
from edgedistill.distill.losses.registry import DistillLoss, Tensors, register
from edgedistill.errors import ConfigError

KINDS = {"qq": "query", "kk": "key", "vv": "value"}


def relation_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    """KL between relations of projections (B, S, W_s) and (B, S, W_t), both split into ``heads``."""
    return distribution_kl(attention_scores(student, student, heads), attention_scores(teacher, teacher, heads), mask)


@register("minilm_relation")
class MiniLMRelation(DistillLoss):
    def __init__(self, spec: LossSpec, student: ModelInfo, teacher: ModelInfo, where: str):
        super().__init__(spec, student, teacher, where)
        require_white_box(student, where, spec.name)
        require_white_box(teacher, where, spec.name)
        self.heads = spec.relation_heads or teacher.heads
        for who, width in (("student", student.projection_width), ("teacher", teacher.projection_width)):
            if width % self.heads:
                raise ConfigError(f"{where}.relation_heads: {self.heads} does not divide the {who}'s width {width}")
        self.pairs = layer_pairs(spec.layers, student.layers, teacher.layers, where, default="last")
        self.kinds = [KINDS[r] for r in spec.relations]

    def student_keys(self) -> list[str]:
        return [f"{k}.{s}" for s, _ in self.pairs for k in self.kinds]

    def teacher_keys(self) -> list[str]:
        return [f"{k}.{t}" for _, t in self.pairs for k in self.kinds]

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        mask = batch["attention_mask"]
        terms = [relation_kl(student[f"{k}.{s}"].float(), teacher[f"{k}.{t}"].float(), mask, self.heads)
                 for s, t in self.pairs for k in self.kinds]
        return torch.stack(terms).sum()

