"""Running samples through any :class:`Session`, and the metrics the Tasks are scored with."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedistill.engines.base import Session
from edgedistill.errors import InputError
from edgedistill.tasks import Task


def encode(session: Session, task: Task, preprocessor: Any, samples: list[str], batch_size: int = 64,
           max_length: int = 128) -> np.ndarray:
    """The model's outputs for ``samples`` (texts or image paths), (N, D) float32 in the order given.

    Samples are batched in the Task's order (texts by token length, so each batch pads only to its own longest)
    and put back in input order.

    Raises:
        InputError: no samples.
    """
    if not samples:
        raise InputError("no samples to run; give at least one")
    order = task.order(preprocessor, samples, max_length)
    output = session.output_names[0]
    chunks = []
    for start in range(0, len(samples), batch_size):
        feeds = task.encode(preprocessor, [samples[i] for i in order[start:start + batch_size]], max_length)
        chunks.append(session.run(feeds)[output])  # (b, D)
    ordered = np.concatenate(chunks).astype(np.float32)
    out = np.empty_like(ordered)
    out[order] = ordered
    return out


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
