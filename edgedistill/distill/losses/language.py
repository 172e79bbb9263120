"""The language-model losses on the registry (text-generation): each reads the student's logits as ``output``, the
live teacher's logits (``forward_kl``, ``gkd``) and the batch's masks and sparse targets (see
:func:`edgedistill.lm.batches.collate`); the arithmetic is in :mod:`edgedistill.lm.losses`."""

from __future__ import annotations

import torch

from edgedistill.distill.losses.registry import DistillLoss, Tensors, register
from edgedistill.lm import losses as lm


@register("forward_kl")
class ForwardKL(DistillLoss):
    """KL(teacher_T ‖ student_T)·T² over the full vocabulary, on response tokens."""

    mask_key = "mask"  # the batch mask whose positions the loss averages over (the trainer weighs by its count)

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return lm.forward_kl(student["output"], teacher["output"], batch["mask"], self.spec.temperature)


@register("sparse_kl")
class SparseKL(DistillLoss):
    """KL over the teacher's cached / API top-k plus a tail bucket, where the teacher's tokens align."""

    mask_key = "sparse_mask"

    def teacher_keys(self) -> list[str]:
        return []

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return lm.sparse_kl(student["output"], batch["top_ids"], batch["top_logprobs"], batch["sparse_mask"])


@register("seqkd")
class SeqKD(DistillLoss):
    """Cross-entropy on the teacher's generated tokens (works with a text-only teacher)."""

    mask_key = "target_mask"

    def teacher_keys(self) -> list[str]:
        return []

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return lm.seqkd(student["output"], batch["labels"], batch["target_mask"])


@register("gkd")
class GKD(DistillLoss):
    """Generalized JSD (β) between teacher and student, on the teacher's responses or, for a fraction of batches,
    the student's own (on-policy; the trainer makes those batches)."""

    mask_key = "mask"

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        return lm.generalized_jsd(student["output"], teacher["output"], batch["mask"], self.spec.beta,
                                  self.spec.temperature)
