"""Losses on the final outputs: embedding MSE and cosine, logit KD with temperature and hard labels."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from edgedistill.config import LossSpec
from edgedistill.distill.losses.registry import DistillLoss, Tensors, register


def embedding_mse(student: torch.Tensor, teacher: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """Mean squared error between the task outputs (B, D), as sentence-transformers' MSE distillation."""
    return F.mse_loss(student, teacher)


def embedding_cosine(student: torch.Tensor, teacher: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """1 - cosine similarity per row, averaged (DistilBERT's cosine embedding loss)."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def logits_kl(student: torch.Tensor, teacher: torch.Tensor, spec: LossSpec,
              labels: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) of temperature-softened logits times T² (Hinton et al., 2015).

    With ``labels`` and ``hard_label_weight`` α: (1 - α)·KL·T² + α·CE(student, labels).
    """
    t = spec.temperature
    log_p_student = F.log_softmax(student / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher / t, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * t * t
    alpha = spec.hard_label_weight
    if labels is None or alpha == 0:
        return soft
    return (1 - alpha) * soft + alpha * F.cross_entropy(student, labels)


@register("embedding_mse")
class EmbeddingMSE(DistillLoss):
    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return embedding_mse(student["output"], teacher["output"], self.spec)


@register("embedding_cosine")
class EmbeddingCosine(DistillLoss):
    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return embedding_cosine(student["output"], teacher["output"], self.spec)


@register("logits_kl")
class LogitsKL(DistillLoss):
    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return logits_kl(student["output"], teacher["output"], self.spec, batch.get("labels"))
