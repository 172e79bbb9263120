"""The LM distillation losses against references computed independently (numpy sums, torch.distributions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

from edgedistill.errors import InputError
from edgedistill.lm.losses import (
    forward_kl,
    generalized_jsd,
    log1mexp,
    seqkd,
    sparse_kl,
    topk_logprobs,
)


def softmax_np(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def logits(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2.0


MASK = torch.tensor([[1, 1, 0, 1], [0, 1, 1, 0]])


def reference_forward_kl(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, temperature: float) -> float:
    """Mean over masked positions of KL(teacher_T || student_T)·T², by torch.distributions."""
    kl = kl_divergence(Categorical(logits=t.double() / temperature), Categorical(logits=s.double() / temperature))
    return float(kl[mask.bool()].mean()) * temperature**2


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_forward_kl_matches_torch_distributions(temperature: float) -> None:
    s, t = logits(0, 2, 4, 7), logits(1, 2, 4, 7)
    got = forward_kl(s, t, MASK, temperature).item()
    assert got == pytest.approx(reference_forward_kl(s, t, MASK, temperature), rel=1e-5)


def test_forward_kl_ignores_masked_positions_even_if_nan() -> None:
    s, t = logits(0, 2, 4, 7), logits(1, 2, 4, 7)
    s_bad = s.clone()
    s_bad[~MASK.bool()] = float("nan")
    assert forward_kl(s_bad, t, MASK).item() == pytest.approx(forward_kl(s, t, MASK).item(), rel=1e-6)


def test_forward_kl_slices_padding_rows_of_the_larger_vocabulary() -> None:
    s, t = logits(0, 2, 4, 7), logits(1, 2, 4, 7)
    padded_teacher = torch.cat([t, logits(2, 2, 4, 3)], dim=-1)  # 3 padding rows no token uses
    assert forward_kl(s, padded_teacher, MASK).item() == pytest.approx(forward_kl(s, t, MASK).item(), rel=1e-6)
    padded_student = torch.cat([s, logits(3, 2, 4, 5)], dim=-1)
    assert forward_kl(padded_student, t, MASK).item() == pytest.approx(forward_kl(s, t, MASK).item(), rel=1e-6)


def test_forward_kl_of_identical_logits_is_zero_and_mask_shape_is_checked() -> None:
    s = logits(0, 2, 4, 7)
    assert forward_kl(s, s, MASK).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(InputError, match="mask has shape"):
        forward_kl(s, s, MASK[:, :3])


def test_topk_logprobs_are_the_largest_log_softmax_entries() -> None:
    x = logits(0, 3, 9)
    ids, lp = topk_logprobs(x, 4)
    assert ids.dtype == torch.int64 and ids.shape == (3, 4) and lp.shape == (3, 4)
    ref = np.log(softmax_np(x.numpy().astype(np.float64)))
    for row in range(3):
        order = np.argsort(-ref[row])[:4]
        assert ids[row].tolist() == order.tolist()
        np.testing.assert_allclose(lp[row].numpy(), ref[row, order], rtol=1e-5)
    assert topk_logprobs(x, 50)[0].shape == (3, 9)  # k cut to the vocabulary


def reference_sparse_kl(s: np.ndarray, ids: np.ndarray, lp: np.ndarray) -> float:
    """KL over the listed ids plus one tail bucket, for one position, by explicit sums (float64)."""
    q = softmax_np(s.astype(np.float64))
    keep = ids >= 0
    p_top, q_top = np.exp(lp[keep].astype(np.float64)), q[ids[keep]]
    total = float(np.sum(p_top * np.log(p_top / q_top)))
    p_tail, q_tail = 1.0 - p_top.sum(), 1.0 - q_top.sum()
    return total + (p_tail * math.log(p_tail / q_tail) if p_tail > 0 else 0.0)


def test_sparse_kl_matches_explicit_sums_with_padding_entries() -> None:
    s, t = logits(0, 2, 4, 11), logits(1, 2, 4, 11)
    ids, lp = topk_logprobs(t, 5)
    ids[0, 1, 3:] = -1  # this position's teacher listed 3 alternatives only
    lp[0, 1, 3:] = float("-inf")
    expected = np.mean([reference_sparse_kl(s[b, i].numpy(), ids[b, i].numpy(), lp[b, i].numpy())
                        for b, i in MASK.nonzero().tolist()])
    assert sparse_kl(s, ids, lp, MASK).item() == pytest.approx(expected, rel=1e-5)


def test_sparse_kl_with_k_equal_to_the_vocabulary_is_forward_kl() -> None:
    s, t = logits(0, 2, 4, 11), logits(1, 2, 4, 11)
    ids, lp = topk_logprobs(t, 11)
    assert sparse_kl(s, ids, lp, MASK).item() == pytest.approx(forward_kl(s, t, MASK).item(), rel=1e-4, abs=1e-5)


def test_sparse_kl_is_below_forward_kl_and_zero_for_the_teacher_itself() -> None:
    s, t = logits(0, 2, 4, 11), logits(1, 2, 4, 11)
    ids, lp = topk_logprobs(t, 3)
    # merging outcomes into one bucket never increases a KL (data processing inequality)
    assert sparse_kl(s, ids, lp, MASK).item() <= forward_kl(s, t, MASK).item()
    assert sparse_kl(t, ids, lp, MASK).item() == pytest.approx(0.0, abs=1e-6)


def test_sparse_kl_gradients_are_finite_with_padding_rows_and_a_full_top_k() -> None:
    s = logits(0, 2, 4, 11).requires_grad_()
    ids, lp = topk_logprobs(logits(1, 2, 4, 11), 11)  # tails are 0: log(1 - Σq) must not give inf/NaN
    ids[~MASK.bool()] = -1  # masked positions carry padding only
    lp[~MASK.bool()] = float("-inf")
    sparse_kl(s, ids, lp, MASK).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
    assert s.grad[~MASK.bool()].abs().max() == 0


def test_log1mexp_is_accurate_at_both_ends() -> None:
    x = torch.tensor([-1e-6, -0.1, -0.7, -5.0, -40.0], dtype=torch.float64)
    # float64 references: log(-expm1(x)) near 0; for x = -40, log(1 - e^-40) = -e^-40 to 1e-35
    expected = [math.log(-math.expm1(v)) for v in x.tolist()[:4]] + [-math.exp(-40.0)]
    np.testing.assert_allclose(log1mexp(x).numpy(), expected, rtol=1e-12)


def test_seqkd_is_cross_entropy_on_the_masked_targets() -> None:
    s = logits(0, 2, 4, 7)
    targets = torch.tensor([[1, 6, -100, 0], [-100, 3, 2, -100]])
    log_q = np.log(softmax_np(s.numpy().astype(np.float64)))
    expected = -np.mean([log_q[b, i, targets[b, i]] for b, i in MASK.nonzero().tolist()])
    assert seqkd(s, targets, MASK).item() == pytest.approx(expected, rel=1e-6)


def test_generalized_jsd_limits_are_forward_and_reverse_kl() -> None:
    s, t = logits(0, 2, 4, 7), logits(1, 2, 4, 7)
    for temperature in (1.0, 2.0):
        forward = reference_forward_kl(s, t, MASK, temperature) / temperature**2  # TRL applies no T²
        reverse = reference_forward_kl(t, s, MASK, temperature) / temperature**2
        assert generalized_jsd(s, t, MASK, 0.0, temperature).item() == pytest.approx(forward, rel=1e-5)
        assert generalized_jsd(s, t, MASK, 1.0, temperature).item() == pytest.approx(reverse, rel=1e-5)
    # and the interior tends to them: JSD_β / β -> KL(p||q), JSD_β / (1 - β) -> KL(q||p)
    eps = 1e-4
    assert generalized_jsd(s, t, MASK, eps).item() / eps == pytest.approx(reference_forward_kl(s, t, MASK, 1.0),
                                                                         rel=1e-2)
    assert generalized_jsd(s, t, MASK, 1 - eps).item() / eps == pytest.approx(reference_forward_kl(t, s, MASK, 1.0),
                                                                             rel=1e-2)


def test_generalized_jsd_by_hand_on_three_tokens() -> None:
    """One position, a 3-token vocabulary, β = 0.3: the mixture and both KLs written out term by term."""
    s, t = torch.tensor([[[0.0, 1.0, 2.0]]]), torch.tensor([[[2.0, 0.0, -1.0]]])
    q = [math.exp(v) / sum(math.exp(u) for u in (0.0, 1.0, 2.0)) for v in (0.0, 1.0, 2.0)]
    p = [math.exp(v) / sum(math.exp(u) for u in (2.0, 0.0, -1.0)) for v in (2.0, 0.0, -1.0)]
    beta = 0.3
    m = [beta * p[i] + (1 - beta) * q[i] for i in range(3)]
    kl_p_m = sum(p[i] * math.log(p[i] / m[i]) for i in range(3))
    kl_q_m = sum(q[i] * math.log(q[i] / m[i]) for i in range(3))
    expected = beta * kl_p_m + (1 - beta) * kl_q_m
    got = generalized_jsd(s, t, torch.ones(1, 1), beta).item()
    assert got == pytest.approx(expected, rel=1e-6)
    # p = (0.8438, 0.1142, 0.0420), q = (0.0900, 0.2447, 0.6652), M = (0.3162, 0.2056, 0.4783)
    assert got == pytest.approx(0.30207, abs=5e-5)


def test_generalized_jsd_is_symmetric_at_one_half_and_checks_beta() -> None:
    s, t = logits(0, 2, 4, 7), logits(1, 2, 4, 7)
    assert generalized_jsd(s, t, MASK, 0.5).item() == pytest.approx(generalized_jsd(t, s, MASK, 0.5).item(),
                                                                    rel=1e-5)
    with pytest.raises(InputError, match="beta"):
        generalized_jsd(s, t, MASK, 1.5)


def test_every_loss_has_zero_gradient_at_unmasked_positions_and_is_zero_with_no_position() -> None:
    s, t = logits(0, 2, 4, 7), logits(1, 2, 4, 7)
    ids, lp = topk_logprobs(t, 3)
    targets = t.argmax(-1)
    losses = {"forward_kl": lambda x, m: forward_kl(x, t, m, 2.0), "sparse_kl": lambda x, m: sparse_kl(x, ids, lp, m),
              "seqkd": lambda x, m: seqkd(x, targets, m), "gkd": lambda x, m: generalized_jsd(x, t, m, 0.3)}
    for name, loss in losses.items():
        student = s.clone().requires_grad_(True)
        loss(student, MASK).backward()
        assert student.grad is not None
        assert torch.all(student.grad[~MASK.bool()] == 0), name
        assert torch.all(student.grad[MASK.bool()].abs().sum(-1) > 0), name
        none = s.clone().requires_grad_(True)
        empty = loss(none, torch.zeros_like(MASK))
        empty.backward()  # still part of the graph, so a step with no masked position runs
        assert empty.item() == 0.0 and none.grad is not None and torch.all(none.grad == 0), name
