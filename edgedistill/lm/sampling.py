"""Choosing the next token from logits, as Hugging Face's ``generate`` does: greedy, or temperature, then top-k,
then top-p (nucleus) filtering before sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1.0 switch their filter off."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def filtered_logits(logits: np.ndarray, sampling: Sampling) -> np.ndarray:
    """(B, V) logits after temperature, top-k and top-p; removed tokens get -inf."""
    scaled = logits.astype(np.float64) / sampling.temperature
    if 0 < sampling.top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -sampling.top_k, axis=-1)[:, -sampling.top_k][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    if sampling.top_p < 1.0:
        order = np.argsort(-scaled, axis=-1)
        probs = softmax(np.take_along_axis(scaled, order, axis=-1))
        before = np.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above each one
        drop = np.zeros_like(scaled, dtype=bool)
        np.put_along_axis(drop, order, before >= sampling.top_p, axis=-1)
        scaled = np.where(drop, -np.inf, scaled)
    return scaled


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def next_tokens(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> np.ndarray:
    """(B,) next token ids from (B, V) logits."""
    if sampling.greedy:
        out: np.ndarray = logits.argmax(axis=-1)
        return out
    probs = softmax(filtered_logits(logits, sampling))
    return np.array([rng.choice(len(p), p=p) for p in probs])
