"""A Hugging Face model folder run eagerly by torch on the CPU."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch

from edgedistill.models.task_model import TaskModel, count_parameters, load_task_model

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def accepted_inputs(model: TaskModel) -> list[str]:
    """The inputs the backbone takes (DistilBERT-style models have no ``token_type_ids``)."""
    params = inspect.signature(model.backbone.forward).parameters
    return [name for name in MODEL_INPUTS if name in params]


class TorchSession:
    """Session over :class:`TaskModel`; ``threads`` sets torch's (process-wide) intra-op thread count."""

    backend = "torch"

    def __init__(self, path: Path, task: str, threads: int | None = None):
        if threads is not None:
            torch.set_num_threads(threads)
        self.model, self.tokenizer = load_task_model(path, task)
        self.input_names = accepted_inputs(self.model)
        self.output_names = [self.model.output_name]

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds are int64 arrays (B, S); names the model does not take are ignored."""
        inputs = {name: torch.from_numpy(np.asarray(feeds[name], dtype=np.int64))
                  for name in self.input_names if name in feeds}
        with torch.inference_mode():
            out = self.model(**inputs)  # (B, D)
        return {self.output_names[0]: out.numpy()}
