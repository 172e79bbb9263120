"""Evaluate one artifact with its Task's metrics: fidelity to the teacher on held-out samples, and the task
metric on each scored set (STS Spearman, accuracy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact
from edgedistill.config import EvaluateConfig
from edgedistill.engines.base import open_session
from edgedistill.engines.size import model_file_mb
from edgedistill.engines.tokenizer import load_preprocessor
from edgedistill.evaluate.metrics import encode
from edgedistill.tasks import get_task

EvalSet = tuple[Any, np.ndarray | None]  # scored data (STS pairs or labelled samples) and its class ids


def teacher_reference(teacher: Artifact, heldout: list[str], cfg: EvaluateConfig,
                      threads: int | None = None) -> np.ndarray:
    """The teacher's outputs on the held-out samples, (N, D): computed once, compared with every artifact."""
    session = open_session(teacher, threads=threads)
    return encode(session, get_task(teacher.task), load_preprocessor(teacher), heldout, cfg.batch_size,
                  cfg.max_length)


def evaluate_artifact(artifact: Artifact, *, teacher_outputs: np.ndarray | None, heldout: list[str],
                      sets: dict[str, EvalSet], cfg: EvaluateConfig, threads: int | None = None) -> dict[str, Any]:
    """Measure one artifact's quality with its Task's metrics.

    Returns:
        ``{"kind", "path", "backend", "params" (torch only, else None), "file_mb", the Task's fidelity metrics
        (None without teacher outputs or held-out samples; ``fidelity_cosine`` or ``agreement`` and ``kl``), and
        per scored set its metric (``sts_<set>_spearman`` or ``accuracy_<set>``)}``.
    Raises:
        InputError: the artifact cannot be loaded, or its outputs do not match the teacher's shape.
    """
    task = get_task(artifact.task)
    session = open_session(artifact, threads=threads)
    preprocessor = load_preprocessor(artifact)

    def outputs(samples: list[str]) -> np.ndarray:
        return encode(session, task, preprocessor, samples, cfg.batch_size, cfg.max_length)

    fidelity: dict[str, Any] = dict.fromkeys(task.fidelity_keys)  # unmeasured
    if teacher_outputs is not None and heldout:
        fidelity = task.fidelity(outputs(heldout), teacher_outputs)
    scores: dict[str, Any] = {}
    for name, (data, labels) in sets.items():
        scores |= task.score(outputs, name, data, labels)
    params = getattr(session, "num_parameters", None)
    return {"kind": artifact.kind, "path": str(artifact.path), "backend": session.backend,
            "params": int(params) if params is not None else None, "file_mb": round(model_file_mb(artifact), 3),
            **fidelity, **scores}
