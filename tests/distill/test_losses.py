"""Each loss against a value computed by hand on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from edgedistill.config import LossSpec
from edgedistill.distill.losses import combined_loss, embedding_cosine, embedding_mse, logits_kl


def test_embedding_mse_by_hand():
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # squared errors 0, 4, 1, 1 -> mean 1.5
    assert embedding_mse(s, t, LossSpec(name="embedding_mse")).item() == pytest.approx(1.5)


def test_embedding_cosine_by_hand():
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    t = torch.tensor([[0.0, 2.0], [2.0, 2.0]])
    # cosines 0 and 1 -> mean(1 - cos) = 0.5
    assert embedding_cosine(s, t, LossSpec(name="embedding_cosine")).item() == pytest.approx(0.5)


def test_logits_kl_by_hand_with_temperature():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[2.0, 0.0]])
    temp = 2.0
    p = torch.softmax(t / temp, -1)[0].tolist()  # teacher probabilities at T
    expected = sum(pi * math.log(pi / 0.5) for pi in p) * temp**2
    got = logits_kl(s, t, LossSpec(name="logits_kl", temperature=temp)).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_combined_loss_is_weighted_sum():
    s, t = torch.randn(4, 8), torch.randn(4, 8)
    specs = [LossSpec(name="embedding_mse", weight=2.0), LossSpec(name="embedding_cosine", weight=0.5)]
    expected = 2.0 * embedding_mse(s, t, specs[0]) + 0.5 * embedding_cosine(s, t, specs[1])
    assert combined_loss(specs, s, t).item() == pytest.approx(expected.item())
