"""Batching for the text-generation metrics: pad token-id lists into tensors and score them with a causal LM.

Right padding for scoring (a real token keeps the position it has alone, so batched equals unbatched), left
padding for generation (every prompt ends where the new tokens start).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + max(1, size)]


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (CPU for a model without any)."""
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


def pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its EOS id, else 0 (padded positions are masked out, so any id works)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def pad(sequences: Sequence[Sequence[int]], pad_value: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``input_ids`` (B, T) int64 and ``attention_mask`` (B, T), padded on the right (or the left)."""
    width = max((len(s) for s in sequences), default=0)
    ids = torch.full((len(sequences), width), pad_value, dtype=torch.int64)
    mask = torch.zeros((len(sequences), width), dtype=torch.int64)
    for row, seq in enumerate(sequences):
        cols = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, cols] = torch.as_tensor(np.asarray(seq, dtype=np.int64))
        mask[row, cols] = 1
    return ids, mask


@torch.no_grad()
def causal_logits(model: Any, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's logits (B, T, V) for right-padded ``sequences`` and their mask (B, T), on the model's device."""
    ids, mask = pad(sequences, 0)
    device = model_device(model)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return logits, mask.to(device)


@torch.no_grad()
def token_logprobs(model: Any, sequences: Sequence[Sequence[int]], batch_size: int = 8) -> list[np.ndarray]:
    """For each sequence of n tokens, log p(token t | tokens < t) for t = 1..n-1 (float64, length n-1).

    The first token is never scored: nothing predicts it (a BOS the tokenizer adds is that token).
    """
    out: list[np.ndarray] = []
    for batch in batches(sequences, batch_size):
        if max(len(seq) for seq in batch) < 2:  # nothing to score (and an empty batch would not run)
            out.extend(np.zeros(0) for _ in batch)
            continue
        logits, _ = causal_logits(model, batch)
        log_p = F.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
        ids, _ = pad(batch, 0)
        picked = log_p.gather(-1, ids[:, 1:].to(log_p.device).unsqueeze(-1)).squeeze(-1)  # (B, T-1)
        rows = picked.double().cpu().numpy()
        out.extend(rows[row, : max(len(seq) - 1, 0)] for row, seq in enumerate(batch))
    return out
