"""Helpers shared by the quantize tests (not fixtures)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def op_counts(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def embed(path: Path, texts: list[str]) -> np.ndarray:
    """(N, D) float32 embeddings of ``texts`` by the model at ``path`` with the tokenizer next to it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent)
    enc = dict(tokenizer(texts, padding=True, return_tensors="np"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    out: np.ndarray = session.run(None, {k: v for k, v in enc.items() if k in names})[0]
    return out.astype(np.float32)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())
