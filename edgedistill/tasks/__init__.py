"""One Task per kind of model (see :mod:`edgedistill.tasks.base`), by the names configs use."""

from __future__ import annotations

from edgedistill.errors import ConfigError
from edgedistill.tasks.base import Task
from edgedistill.tasks.image_classification import ImageClassification
from edgedistill.tasks.inputs import InputSpec, spec_of_onnx, synthetic_feeds
from edgedistill.tasks.sentence_embedding import SentenceEmbedding
from edgedistill.tasks.sequence_classification import SequenceClassification
from edgedistill.tasks.text_generation import TextGeneration

TASKS: dict[str, Task] = {t.name: t for t in (SentenceEmbedding(), SequenceClassification(), ImageClassification(),
                                              TextGeneration())}


def get_task(name: str) -> Task:
    """The Task called ``name``.

    Raises:
        ConfigError: no such task (with a did-you-mean hint).
    """
    if name not in TASKS:
        from edgedistill.config import suggest

        raise ConfigError(f"unknown task '{name}'; {suggest(name, list(TASKS))}")
    return TASKS[name]


__all__ = ["TASKS", "InputSpec", "Task", "get_task", "spec_of_onnx", "synthetic_feeds"]
