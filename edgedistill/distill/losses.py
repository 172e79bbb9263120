"""Named distillation losses. YAML refers to them by name (``embedding_mse``) with a weight each."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

from edgedistill.config import LossSpec

LossFn = Callable[[torch.Tensor, torch.Tensor, LossSpec], torch.Tensor]
LOSSES: dict[str, LossFn] = {}


def register(name: str) -> Callable[[LossFn], LossFn]:
    def wrap(fn: LossFn) -> LossFn:
        LOSSES[name] = fn
        return fn

    return wrap


@register("embedding_mse")
def embedding_mse(student: torch.Tensor, teacher: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """Mean squared error between the task outputs (B, D), as sentence-transformers' MSE distillation."""
    return F.mse_loss(student, teacher)


@register("embedding_cosine")
def embedding_cosine(student: torch.Tensor, teacher: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """1 - cosine similarity per row, averaged (DistilBERT's cosine embedding loss)."""
    return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()


@register("logits_kl")
def logits_kl(student: torch.Tensor, teacher: torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """KL(teacher || student) of temperature-softened logits, times T² (Hinton et al., 2015)."""
    t = spec.temperature
    log_p_student = F.log_softmax(student / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * t * t


def combined_loss(specs: list[LossSpec], student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Weighted sum of the configured losses."""
    return sum((spec.weight * LOSSES[spec.name](student, teacher, spec) for spec in specs), torch.zeros(()))
