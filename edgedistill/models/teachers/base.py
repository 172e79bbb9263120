"""One interface for every teacher: given batches of inputs, return the outputs the losses need.

Black-box teachers (ONNX, recorded, HTTP) return final outputs only; a white-box teacher (Hugging Face)
also exposes its ``model`` so losses can hook hidden states and attention.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


class Teacher:
    """Base: ``run`` one batch of texts → (B, D) float32; ``label`` many batches, yielding each as answered."""

    name = "teacher"
    white_box = False
    model: Any = None

    def identity(self) -> dict[str, Any]:
        """What determines the outputs (hashed into the cache key). Never includes secrets."""
        raise NotImplementedError

    def run(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def label(self, batches: list[list[str]]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (batch index, outputs) for each batch; remote teachers answer out of order, concurrently."""
        for i, texts in enumerate(batches):
            yield i, self.run(texts)

    def outputs(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """All outputs (N, D) in order, without caching."""
        batches = [texts[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        parts = dict(self.label(batches))
        return np.concatenate([parts[i] for i in range(len(batches))])
