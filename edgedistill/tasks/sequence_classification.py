"""sequence-classification: the family's own classifier over the encoder; (B, C) logits per text."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from edgedistill.tasks.classification import ClassificationMetrics
from edgedistill.tasks.text import TextTask

if TYPE_CHECKING:
    from edgedistill.models.task_model import TaskModel


class SequenceClassification(ClassificationMetrics, TextTask):
    name = "sequence-classification"
    output_name = "logits"
    auto_class_name = "AutoModelForSequenceClassification"

    def head(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = model.backbone(**inputs).logits
        return logits
