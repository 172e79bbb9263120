"""What every classification Task (text or image) measures: agreement with the teacher's choice, the KL divergence
of its class distribution from the teacher's, and accuracy against labels where the data has them."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgedistill.errors import InputError
from edgedistill.tasks.base import Outputs

LABELS_KEY = "edgedistill.labels"  # ONNX metadata: the class names, by id, as JSON


def label_names(config: Any) -> list[str] | None:
    """A model config's class names in id order (``id2label``), or None when it has only placeholders."""
    id2label = getattr(config, "id2label", None) or (config.get("id2label") if isinstance(config, dict) else None)
    if not id2label:
        return None
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    return None if all(n == f"LABEL_{i}" for i, n in enumerate(names)) else names


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def agreement(student: np.ndarray, teacher: np.ndarray) -> float:
    """Share of samples where the student picks the teacher's class."""
    return float((student.argmax(-1) == teacher.argmax(-1)).mean())


def kl_divergence(student: np.ndarray, teacher: np.ndarray) -> float:
    """Mean KL(teacher ‖ student) of the class distributions (nats; 0 = the same distribution)."""
    log_t, log_s = log_softmax(teacher), log_softmax(student)
    return float((np.exp(log_t) * (log_t - log_s)).sum(-1).mean())


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(-1) == labels).mean())


class ClassificationMetrics:
    """Quality of a classifier, mixed into the classification Tasks."""

    fidelity_key: ClassVar[str] = "agreement"
    fidelity_keys: ClassVar[tuple[str, ...]] = ("agreement", "kl")

    def fidelity(self, student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
        if student.shape != teacher.shape:
            raise InputError(f"logit shapes differ: {student.shape} vs {teacher.shape}; the student must predict "
                             "the teacher's classes")
        return {"agreement": agreement(student, teacher), "kl": kl_divergence(student, teacher)}

    def score(self, outputs: Outputs, name: str, data: Any, labels: np.ndarray | None) -> dict[str, float]:
        if labels is None:
            raise InputError(f"data.{name}: a classifier is scored on labelled samples")
        return {f"accuracy_{name}": accuracy(outputs(data.samples), labels)}

    def selection_metric(self, has_eval: bool) -> str:
        return "accuracy_eval" if has_eval else "agreement"
