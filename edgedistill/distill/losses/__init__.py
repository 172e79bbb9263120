"""Named distillation losses. YAML refers to them by name (``embedding_mse``) with a weight each.

Importing this package registers every loss; :class:`LossSet` builds the configured ones for a run.
"""

from __future__ import annotations

import torch

from edgedistill.config import LossSpec
from edgedistill.distill.losses import attention, feature, hidden, language, relation  # noqa: F401 (register)
from edgedistill.distill.losses.output import embedding_cosine, embedding_mse, logits_kl
from edgedistill.distill.losses.registry import LOSSES, DistillLoss, LossSet, register

OUTPUT_FUNCTIONS = {"embedding_mse": embedding_mse, "embedding_cosine": embedding_cosine, "logits_kl": logits_kl}


def combined_loss(specs: list[LossSpec], student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Weighted sum of output-only losses on (B, D) tensors."""
    return sum((s.weight * OUTPUT_FUNCTIONS[s.name](student, teacher, s) for s in specs), torch.zeros(()))


__all__ = ["LOSSES", "DistillLoss", "LossSet", "register", "combined_loss", "embedding_cosine", "embedding_mse",
           "logits_kl"]
