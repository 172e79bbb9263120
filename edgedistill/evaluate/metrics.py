"""Embedding, fidelity and STS metrics over any :class:`Session`."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedistill.engines.base import Session
from edgedistill.errors import InputError


def token_lengths(tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    """Number of tokens per text after truncation, shape (N,)."""
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return np.asarray([len(x) for x in ids])


def encode(session: Session, tokenizer: Any, texts: list[str], batch_size: int = 64,
           max_length: int = 128) -> np.ndarray:
    """Embed ``texts`` with ``session``; returns (N, D) float32 in the order of ``texts``.

    Texts are batched in order of token length so each batch pads only to its own longest text;
    the result is put back in input order.
    """
    if not texts:
        raise InputError("no texts to encode; give at least one text")
    order = np.argsort(-token_lengths(tokenizer, texts, max_length), kind="stable")
    output = session.output_names[0]
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = [texts[i] for i in order[start:start + batch_size]]
        enc = tokenizer(batch, padding="longest", truncation=True, max_length=max_length, return_tensors="np")
        feeds = {name: np.asarray(value, dtype=np.int64) for name, value in enc.items()}
        chunks.append(session.run(feeds)[output])  # (b, D)
    sorted_emb = np.concatenate(chunks).astype(np.float32)
    emb = np.empty_like(sorted_emb)
    emb[order] = sorted_emb
    return emb


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows of two (N, D) arrays, shape (N,)."""
    if a.shape != b.shape:
        raise InputError(f"embedding shapes differ: {a.shape} vs {b.shape}; compare models with the same output size")
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.asarray((a * b).sum(axis=1) / np.maximum(norms, 1e-12))


def fidelity_cosine(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean row-wise cosine between student and teacher embeddings (1 = same direction)."""
    return float(row_cosine(student, teacher).mean())


def sts_spearman(emb1: np.ndarray, emb2: np.ndarray, scores: np.ndarray) -> float:
    """Spearman rank correlation ×100 between the pairs' cosine similarity and the human scores."""
    from scipy.stats import spearmanr

    if len(scores) != len(emb1):
        raise InputError(f"{len(emb1)} embedding pairs but {len(scores)} scores; they must be aligned")
    result = spearmanr(row_cosine(emb1, emb2), scores)
    return float(result.statistic) * 100.0
