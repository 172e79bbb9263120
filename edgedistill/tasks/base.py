"""A Task is one kind of model: what its head computes, what its exported graph takes and gives, which inputs
verify, calibrate and time it, and how its quality is measured.

Stages never branch on the task's name: they ask the Task. Adding a kind of model (token classification, text
generation) is one more Task, not another pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from edgedistill.config import DynamicAxes, Range
from edgedistill.tasks.inputs import InputSpec

if TYPE_CHECKING:
    import torch

    from edgedistill.models.task_model import TaskModel

Feeds = dict[str, np.ndarray]
Outputs = Callable[[list[str]], np.ndarray]  # samples (texts or image paths) -> the model's outputs (N, D)


def clamp(value: int, rng: Range) -> int:
    return max(rng.min, min(value, rng.max))


class Task(ABC):
    """One kind of model. Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]
    # The stages a run goes through for this Task, and the modules of those it does its own way.
    stages: ClassVar[tuple[str, ...]] = ("distill", "export", "fuse", "quantize", "evaluate", "bench", "report")
    distill_stage: ClassVar[str] = "edgedistill.distill.stage"
    export_stage: ClassVar[str] = "edgedistill.export.stage"
    generative: ClassVar[bool] = False  # runs api.run_generative: its own distill, export and evaluate stages
    evaluate_stage: ClassVar[str] = "edgedistill.evaluate.stage"
    modality: ClassVar[Literal["text", "image"]]
    output_name: ClassVar[str]
    auto_class_name: ClassVar[str]  # the transformers Auto class that loads a folder for this task

    def quantize_steps(self, config: Any) -> list[Any]:
        """The quantization steps of a run: the config's."""
        return list(config.quantize)

    def auto_class(self) -> Any:
        import transformers

        return getattr(transformers, self.auto_class_name)

    @abstractmethod
    def load_preprocessor(self, folder: Path) -> Any:
        """The tokenizer or image processor saved with a model folder (raises InputError when there is none)."""

    @abstractmethod
    def input_names(self, backbone: Any) -> list[str]:
        """The graph inputs, in :meth:`TaskModel.forward` order."""

    @abstractmethod
    def head(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The task output of ``model``'s backbone for ``inputs``: (B, D) embeddings or (B, C) logits."""

    @abstractmethod
    def input_spec(self, model: TaskModel, preprocessor: Any) -> InputSpec:
        """What the model takes, for synthetic inputs."""

    @abstractmethod
    def export_axes(self, dynamic: DynamicAxes) -> dict[int, tuple[str, Range]]:
        """The dynamic axes of every input: axis → (name, range)."""

    @abstractmethod
    def export_metadata(self, spec: InputSpec, dynamic: DynamicAxes) -> dict[str, str]:
        """The ``metadata_props`` describing the exported graph's inputs and their ranges."""

    @abstractmethod
    def verification_feeds(self, model: TaskModel, preprocessor: Any, dynamic: DynamicAxes) -> list[tuple[str, Feeds]]:
        """``(shape label, feeds)`` that prove an export: the edges of the exported ranges."""

    @abstractmethod
    def encode(self, preprocessor: Any, samples: list[Any], max_length: int) -> Feeds:
        """Real inputs: a batch of texts (or images) made into the model's feeds, as numpy arrays."""

    def example_feeds(self, model: TaskModel, preprocessor: Any, dynamic: DynamicAxes) -> Feeds:
        """Inputs to trace the export with: batch 2 and sequence 8 where the ranges allow (sizes 0 and 1 get
        specialised by the exporter)."""
        from edgedistill.tasks.inputs import synthetic_feeds

        spec = self.input_spec(model, preprocessor)
        return synthetic_feeds(spec, clamp(2, dynamic.batch), clamp(8, dynamic.sequence))

    # ------------------------------------------------------------------ quality

    fidelity_key: ClassVar[str]  # the headline agreement with the teacher, shown in the report
    fidelity_keys: ClassVar[tuple[str, ...]]  # every key :meth:`fidelity` returns

    @abstractmethod
    def fidelity(self, student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
        """How closely the student's outputs follow the teacher's on the same samples (higher is closer, KL aside)."""

    @abstractmethod
    def score(self, outputs: Outputs, name: str, data: Any, labels: np.ndarray | None) -> dict[str, float]:
        """The task metric on a scored set ``data`` (STS pairs, or labelled samples whose class ids are ``labels``),
        keyed by the set's ``name``."""

    @abstractmethod
    def selection_metric(self, has_eval: bool) -> str:
        """The metric that chooses between students: on the eval set when there is one, else fidelity."""

    def order(self, preprocessor: Any, samples: list[str], max_length: int) -> np.ndarray:
        """The order to batch ``samples`` in (text: longest first, so each batch pads only to its own longest)."""
        return np.arange(len(samples))
