"""Pooling of token states into sentence vectors, against numpy."""

from __future__ import annotations

import numpy as np
import torch

from edgedistill.tasks.sentence_embedding import pool


def states_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 7, 16, generator=gen)
    mask = torch.ones(3, 7, dtype=torch.int64)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    return hidden, mask


def test_mean_pooling_matches_numpy_over_unpadded_tokens() -> None:
    hidden, mask = states_and_mask()
    h, m = hidden.numpy(), mask.numpy().astype(bool)
    want = np.stack([h[b, m[b]].mean(0) for b in range(3)])
    np.testing.assert_allclose(pool(hidden, mask, "mean").numpy(), want, rtol=1e-5, atol=1e-6)


def test_masked_sum_normalises_to_the_mean_direction() -> None:
    hidden, mask = states_and_mask()
    summed = pool(hidden, mask, "mean", mean=False)
    np.testing.assert_allclose(summed.numpy(), (hidden * mask[..., None]).sum(1).numpy(), rtol=1e-5, atol=1e-5)
    unit = torch.nn.functional.normalize
    np.testing.assert_allclose(unit(summed, dim=-1).numpy(), unit(pool(hidden, mask, "mean"), dim=-1).numpy(),
                               atol=1e-6)


def test_max_and_cls_pooling() -> None:
    hidden, mask = states_and_mask()
    h, m = hidden.numpy(), mask.numpy().astype(bool)
    np.testing.assert_allclose(pool(hidden, mask, "max").numpy(), np.stack([h[b, m[b]].max(0) for b in range(3)]))
    np.testing.assert_array_equal(pool(hidden, mask, "cls").numpy(), h[:, 0])
