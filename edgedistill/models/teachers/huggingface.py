"""A Hugging Face model as teacher (white-box: hooks can read hidden states and attention projections)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import sha256_path
from edgedistill.models.task_model import TaskModel, load_task_model
from edgedistill.models.teachers.base import Teacher


class HuggingFaceTeacher(Teacher):
    name = "huggingface"
    white_box = True

    def __init__(self, model: TaskModel, tokenizer: Any, max_length: int, path: Path | None = None):
        self.model, self.tokenizer, self.max_length, self.path = model, tokenizer, max_length, path

    @classmethod
    def load(cls, path: Path, task: str, max_length: int, trust_remote_code: bool = False) -> HuggingFaceTeacher:
        model, tokenizer = load_task_model(path, task, trust_remote_code)
        return cls(model, tokenizer, max_length, path)

    def identity(self) -> dict[str, Any]:
        weights = sha256_path(self.path) if self.path else "in-memory"
        return {"source": "huggingface", "weights": weights, "task": self.model.task, "max_length": self.max_length}

    def run(self, texts: list[str]) -> np.ndarray:
        from edgedistill.distill.teacher_cache import run_model

        return run_model(self.model, self.tokenizer, texts, len(texts), self.max_length)
