"""Token-level distillation losses for causal LMs, as pure functions over logits.

Every loss takes ``mask`` of the logits' leading shape (``(B, T)`` for ``(B, T, V)`` logits): 1 where
``logits[:, t]`` predicts a response token (the caller shifts, so position t scores token t + 1), and returns the
mean over the masked positions of a per-position divergence summed over the vocabulary. Values at masked-out
positions never reach the result (not even as NaN), so padding rows may hold anything. Computations run in float32
whatever the logits' dtype (bf16 log-softmax loses the tail the losses are about).

- :func:`forward_kl`: KL(teacher_T ‖ student_T) · T² over the full vocabulary (Hinton et al. 2015).
- :func:`sparse_kl`: the same KL at T = 1 from a cached top-k of the teacher plus one tail bucket (DistillKit-style).
- :func:`seqkd`: cross-entropy on the teacher's generated tokens (sequence-level KD, Kim & Rush 2016).
- :func:`generalized_jsd`: GKD's generalized Jensen-Shannon divergence (Agarwal et al. 2024), as TRL computes it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgedistill.errors import InputError

# Stands in for log(0) where a finite value is needed (a -inf input to logsumexp gives NaN gradients).
LOG_ZERO = -1e4
# Least tail mass the student is given: log(1 - Σq) stays finite when the top-k ids hold all of its mass.
MIN_TAIL = 1e-12


def check_mask(positions: torch.Size, mask: torch.Tensor) -> None:
    if positions != mask.shape:
        raise InputError(f"mask has shape {tuple(mask.shape)} where the logits' positions are "
                         f"{tuple(positions)}; give one mask entry per predicting position")


def masked_rows(mask: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Each of ``tensors`` (the mask's leading shape, then anything) at the masked positions only, flattened to
    rows: the losses' per-position divergences then run over the vocabulary of those rows alone (a batch's prompts
    and padding, often half its positions, cost no log-softmax), and masked-out values never reach the result
    (not even as NaN)."""
    for t in tensors:
        check_mask(t.shape[:mask.dim()], mask)
    keep = mask.to(torch.bool)
    return [t[keep] for t in tensors]


def row_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean of the selected rows' values; 0 (still attached to the graph) when no position is masked."""
    return values.sum() / max(values.numel(), 1)


def common_vocab(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both logits sliced to the smaller vocabulary, as float32.

    Checkpoints pad the embedding matrix to a multiple of 64 or 128 (Qwen ships 151,936 rows for 151,665 tokens):
    a student and teacher of one tokenizer then differ only by rows no token uses, which are dropped.
    """
    v = min(student_logits.shape[-1], teacher_logits.shape[-1])
    return student_logits[..., :v].float(), teacher_logits[..., :v].float()


def per_token_forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher_T ‖ student_T) · T² at every position (…), over the vocabulary both share."""
    student, teacher = common_vocab(student_logits, teacher_logits)
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1) * temperature**2


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
               temperature: float = 1.0) -> torch.Tensor:
    """Mean over masked positions of KL(softmax(teacher/T) ‖ softmax(student/T)) · T².

    The T² keeps the gradient's scale independent of T (Hinton et al. 2015). Logits (…, V): a vocabulary that
    differs only by padding rows is sliced to the smaller one (:func:`common_vocab`).
    """
    student, teacher = masked_rows(mask, student_logits, teacher_logits)
    return row_mean(per_token_forward_kl(student, teacher, temperature))


def topk_logprobs(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's top-``k`` next-token log-probabilities (full-vocabulary log-softmax), best first.

    Returns ``ids`` int64 (…, k) and ``logprobs`` float32 (…, k): what the sparse cache
    (:mod:`edgedistill.lm.sparse_cache`) stores and :func:`sparse_kl` reads. ``k`` above the vocabulary is cut to it.
    """
    log_p = F.log_softmax(logits.float(), dim=-1)
    values, ids = log_p.topk(min(k, logits.shape[-1]), dim=-1)
    return ids.to(torch.int64), values


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x ≤ 0, accurate at both ends (Mächler 2012: expm1 near 0, log1p far from it).

    x is first capped at −:data:`MIN_TAIL`, so the result stays ≥ ≈ log(MIN_TAIL) and finite, and each branch is
    fed only inputs it is finite on: a NaN in the branch ``torch.where`` drops would still poison the gradient.
    """
    x = x.clamp(max=-MIN_TAIL)
    near_zero = x > -math.log(2.0)
    other = torch.full_like(x, -1.0)
    by_expm1 = torch.log(-torch.expm1(torch.where(near_zero, x, other)))
    by_log1p = torch.log1p(-torch.exp(torch.where(near_zero, other, x)))
    return torch.where(near_zero, by_expm1, by_log1p)


def per_token_sparse_kl(student_logits: torch.Tensor, top_ids: torch.Tensor,
                        top_logprobs: torch.Tensor) -> torch.Tensor:
    """KL(teacher ‖ student) at every position (…) over the teacher's top-k ids plus one tail bucket.

    The k + 1 outcomes are the listed ids and "any other token": the teacher's tail mass is 1 − Σ p_topk, the
    student's 1 − Σ q over the same ids (its full-vocabulary softmax, so its own mass elsewhere is counted). Padding
    entries (id −1, logprob −inf) are no outcome. When the ids cover the vocabulary both tails are 0 and this is the
    full forward KL at T = 1.
    """
    log_q = F.log_softmax(student_logits.float(), dim=-1)
    valid = (top_ids >= 0) & torch.isfinite(top_logprobs)
    lq = log_q.gather(-1, top_ids.clamp(min=0).to(torch.int64))  # (…, k)
    lp = torch.where(valid, top_logprobs.float(), torch.full_like(lq, LOG_ZERO))
    p = torch.where(valid, lp.exp(), torch.zeros_like(lp))
    top_term = (p * (lp - lq)).sum(-1)
    lq_listed = torch.where(valid, lq, torch.full_like(lq, LOG_ZERO))
    log_tail_q = log1mexp(torch.logsumexp(lq_listed, dim=-1))  # (…,): log(1 - Σq), ≥ ≈ log(MIN_TAIL)
    tail_p = (-torch.expm1(torch.logsumexp(lp, dim=-1))).clamp(min=0.0)  # (…,): 1 - Σp, ≥ 0 despite rounding
    has_tail = tail_p > 0
    log_tail_p = torch.log(torch.where(has_tail, tail_p, torch.ones_like(tail_p)))
    tail_term = torch.where(has_tail, tail_p * (log_tail_p - log_tail_q), torch.zeros_like(tail_p))
    return top_term + tail_term


def sparse_kl(student_logits: torch.Tensor, top_ids: torch.Tensor, top_logprobs: torch.Tensor,
              mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of the top-k-plus-tail KL(teacher ‖ student) (:func:`per_token_sparse_kl`).

    ``student_logits`` (…, V); ``top_ids`` (…, k) in the student's vocabulary, −1 for padding; ``top_logprobs``
    (…, k) the teacher's log-probabilities (−inf for padding), e.g. from :func:`topk_logprobs` or an API's
    ``top_logprobs``. Temperature is not applied: cached log-probabilities are the teacher's at T = 1.
    """
    if top_ids.shape != top_logprobs.shape or top_ids.shape[:-1] != student_logits.shape[:-1]:
        raise InputError(f"top_ids {tuple(top_ids.shape)} and top_logprobs {tuple(top_logprobs.shape)} must both "
                         f"be the student logits' positions {tuple(student_logits.shape[:-1])} by k")
    return row_mean(per_token_sparse_kl(*masked_rows(mask, student_logits, top_ids, top_logprobs)))


def seqkd(student_logits: torch.Tensor, target_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of −log q(target): cross-entropy on the teacher's generated tokens.

    ``target_ids`` (…) is the token each position predicts (already shifted); masked-out entries may hold any
    value (−100, the pad id).
    """
    logits, targets = masked_rows(mask, student_logits, target_ids)
    log_q = F.log_softmax(logits.float(), dim=-1)
    return row_mean(-log_q.gather(-1, targets.clamp(min=0).to(torch.int64).unsqueeze(-1)).squeeze(-1))


def per_token_generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float = 0.5,
                              temperature: float = 1.0) -> torch.Tensor:
    """GKD's generalized JSD at every position (…); see :func:`generalized_jsd` for the convention."""
    if not 0.0 <= beta <= 1.0:
        raise InputError(f"generalized_jsd: beta is {beta}; give a value in [0, 1] (0 forward KL, 1 reverse KL)")
    student, teacher = common_vocab(student_logits, teacher_logits)
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    if beta == 0.0:
        return F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(-1)  # KL(teacher ‖ student)
    if beta == 1.0:
        return F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(-1)  # KL(student ‖ teacher)
    log_m = torch.logsumexp(torch.stack([log_q + math.log1p(-beta), log_p + math.log(beta)]), dim=0)
    kl_teacher = F.kl_div(log_m, log_p, reduction="none", log_target=True).sum(-1)  # KL(teacher ‖ M)
    kl_student = F.kl_div(log_m, log_q, reduction="none", log_target=True).sum(-1)  # KL(student ‖ M)
    return beta * kl_teacher + (1.0 - beta) * kl_student


def generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                    beta: float = 0.5, temperature: float = 1.0) -> torch.Tensor:
    """Mean over masked positions of GKD's generalized JSD, in TRL's convention.

    With p = softmax(teacher/T), q = softmax(student/T) and the mixture M = β·p + (1 − β)·q::

        JSD_β = β · KL(p ‖ M) + (1 − β) · KL(q ‖ M)        for 0 < β < 1
        β = 0: KL(p ‖ q)  (forward KL)      β = 1: KL(q ‖ p)  (reverse KL)

    exactly as ``GKDTrainer.generalized_jsd_loss`` in huggingface/trl (``trl/experimental/gkd/gkd_trainer.py``):
    the endpoints are special-cased there too, since JSD_β itself tends to 0 at both ends (JSD_β / β → KL(p ‖ q)
    as β → 0, JSD_β / (1 − β) → KL(q ‖ p) as β → 1). Like TRL, no T² factor is applied.
    """
    student, teacher = masked_rows(mask, student_logits, teacher_logits)
    return row_mean(per_token_generalized_jsd(student, teacher, beta, temperature))
