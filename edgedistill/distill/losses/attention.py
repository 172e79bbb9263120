"""Attention transfer: score MSE (TinyBERT) and distribution KL, from hooked query/key projections.

Scores are rebuilt from the projections, QKᵀ/√d, so the loss works whichever attention kernel the model
runs (SDPA and flash kernels never materialise the scores).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from edgedistill.config import LossSpec
from edgedistill.distill.capture import ModelInfo
from edgedistill.distill.layer_map import layer_pairs
from edgedistill.distill.losses.hidden import require_white_box
from edgedistill.distill.losses.registry import DistillLoss, Tensors, register
from edgedistill.errors import ConfigError


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, S, heads*D) -> (B, heads, S, D)."""
    b, s, width = x.shape
    return x.view(b, s, heads, width // heads).transpose(1, 2)


def attention_scores(query: torch.Tensor, key: torch.Tensor, heads: int) -> torch.Tensor:
    """Pre-softmax scores (B, heads, S, S) from projections (B, S, heads*D)."""
    q, k = split_heads(query, heads), split_heads(key, heads)
    return q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])


def pair_mask(mask: torch.Tensor) -> torch.Tensor:
    """(B, S) token mask -> (B, 1, S, S) mask of (query, key) pairs that are both real tokens."""
    m = mask.to(torch.bool)
    return (m[:, None, :, None] & m[:, None, None, :])


def score_mse(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between scores (B, H, S, S) over real (query, key) pairs."""
    pm = pair_mask(mask).expand_as(student)
    return ((student - teacher) ** 2)[pm].mean()


def masked_softmax_log(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log-softmax over keys, padding keys excluded."""
    keys = mask.to(torch.bool)[:, None, None, :]
    return F.log_softmax(scores.masked_fill(~keys, torch.finfo(scores.dtype).min), dim=-1)


def distribution_kl(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student) of attention rows (B, H, S, S), summed over keys, averaged over real queries."""
    log_s, log_t = masked_softmax_log(student, mask), masked_softmax_log(teacher, mask)
    keys = mask.to(torch.bool)[:, None, None, :]
    kl = (log_t.exp() * (log_t - log_s)).masked_fill(~keys, 0).sum(-1)  # (B, H, S)
    queries = mask.to(torch.bool)[:, None, :].expand_as(kl)
    return kl[queries].mean()


class AttentionLoss(DistillLoss):
    compare = staticmethod(score_mse)

    def __init__(self, spec: LossSpec, student: ModelInfo, teacher: ModelInfo, where: str):
        super().__init__(spec, student, teacher, where)
        require_white_box(student, where, spec.name)
        require_white_box(teacher, where, spec.name)
        if student.heads != teacher.heads:
            raise ConfigError(f"{where}: {spec.name} compares heads one to one, but the student has "
                              f"{student.heads} and the teacher {teacher.heads}; use minilm_relation instead")
        self.heads = (student.heads, teacher.heads)
        self.pairs = layer_pairs(spec.layers, student.layers, teacher.layers, where)

    def student_keys(self) -> list[str]:
        return [f"{kind}.{s}" for s, _ in self.pairs for kind in ("query", "key")]

    def teacher_keys(self) -> list[str]:
        return [f"{kind}.{t}" for _, t in self.pairs for kind in ("query", "key")]

    def forward(self, student: Tensors, teacher: Tensors, batch: Tensors) -> torch.Tensor:
        terms = []
        for s, t in self.pairs:
            s_scores = attention_scores(student[f"query.{s}"], student[f"key.{s}"], self.heads[0])
            t_scores = attention_scores(teacher[f"query.{t}"], teacher[f"key.{t}"], self.heads[1])
            terms.append(type(self).compare(s_scores.float(), t_scores.float(), batch["attention_mask"]))
        return torch.stack(terms).sum()


@register("attention_mse")
class AttentionMSE(AttentionLoss):
    compare = staticmethod(score_mse)


@register("attention_kl")
class AttentionKL(AttentionLoss):
    compare = staticmethod(distribution_kl)
