"""Synthetic model inputs: the same token ids for every backend and artifact at a given shape."""

from __future__ import annotations

import numpy as np

from edgedistill.config import Shape
from edgedistill.errors import InputError

FIRST_ORDINARY_ID = 5  # ids below this are special tokens in BERT-style vocabularies ([PAD], [UNK], [CLS], ...)


def make_feeds(shape: Shape, vocab_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random ``input_ids`` in [5, vocab_size), ``attention_mask`` ones, ``token_type_ids`` zeros, int64 (B, S).

    Raises:
        InputError: the vocabulary is too small to draw ordinary tokens from.
    """
    if vocab_size <= FIRST_ORDINARY_ID:
        raise InputError(f"vocab_size {vocab_size} is too small; expected more than {FIRST_ORDINARY_ID} tokens")
    rng = np.random.default_rng(seed)
    dims = (shape.batch, shape.seq)
    return {
        "input_ids": rng.integers(FIRST_ORDINARY_ID, vocab_size, size=dims, dtype=np.int64),
        "attention_mask": np.ones(dims, dtype=np.int64),
        "token_type_ids": np.zeros(dims, dtype=np.int64),
    }
