"""Teacher outputs computed once and stored on disk, keyed by (teacher, texts, preprocessing).

Later stages and later runs read the stored array instead of running the teacher again. The file is
written atomically, so an interrupted labelling never leaves a partial entry that looks complete.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from edgedistill.artifacts import atomic_write_bytes, sha256_json
from edgedistill.models.task_model import TaskModel, model_inputs


@torch.inference_mode()
def run_model(model: TaskModel, tokenizer: object, texts: list[str], batch_size: int, max_length: int,
              progress: object | None = None) -> np.ndarray:
    """Task outputs for ``texts`` (or image paths) (N, D) as float32, in the order given (batches sorted by length for
    speed); ``tokenizer`` is the model's preprocessor."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        y = model(**model_inputs(model, tokenizer, [texts[i] for i in idx], max_length)).float().numpy()
        if out is None:
            out = np.empty((len(texts), y.shape[1]), dtype=np.float32)
        out[idx] = y
        if progress is not None:
            progress(len(idx))  # type: ignore[operator]
    assert out is not None, "no texts to label"
    return out


def cache_key(teacher_hash: str, texts_hash: str, max_length: int, task: str) -> str:
    return sha256_json({"teacher": teacher_hash, "texts": texts_hash, "max_length": max_length, "task": task})[:16]


def load_or_label(cache_dir: Path, key: str, label: object) -> np.ndarray:
    """Return the cached outputs for ``key``, or compute them with ``label()`` and store them."""
    path = cache_dir / f"teacher-{key}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    outputs: np.ndarray = label()  # type: ignore[operator]
    buf = io.BytesIO()
    np.save(buf, outputs, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())
    return outputs
