"""Students not derived from the teacher: a Hugging Face config (random init) or a user factory.

Both use the teacher's tokenizer, so the vocabulary must cover it. A factory is named ``module.path:function``
(imported, never evaluated as text) and returns a :class:`TaskModel` or a Hugging Face ``PreTrainedModel``,
which is wrapped as a TaskModel with the teacher's task and pooling.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from edgedistill.errors import ConfigError
from edgedistill.models.task_model import TaskModel, model_inputs
from edgedistill.tasks import get_task


def from_hf_config(path: Path, task: str, seed: int, pooling: str = "mean", normalize: bool = True,
                   num_labels: int | None = None) -> TaskModel:
    """A randomly initialised (seeded) model of the architecture in ``path`` (config.json or its folder).

    Raises:
        ConfigError: the file is not a Hugging Face config transformers knows.
    """
    from transformers import AutoConfig

    import edgedistill.models.pruned_bert  # noqa: F401 (pruned_bert configs load too)

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"student.hf_config: cannot read {path}: {str(err).splitlines()[0]}") from None
    spec = get_task(task)
    if num_labels is not None and spec.output_name == "logits":
        config.num_labels = num_labels
    torch.manual_seed(seed)
    return TaskModel(spec.auto_class().from_config(config), task, pooling, normalize)


def from_factory(spec: str, task: str, pooling: str = "mean", normalize: bool = True) -> TaskModel:
    """Call ``module.path:function`` and wrap what it returns as a TaskModel.

    Raises:
        ConfigError: the module or function cannot be found, or it returns something else.
    """
    module_name, _, name = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except ImportError as err:
        raise ConfigError(f"student.factory: cannot import '{module_name}': {err}") from None
    except AttributeError:
        raise ConfigError(f"student.factory: module '{module_name}' has no '{name}'") from None
    model = function()
    if isinstance(model, TaskModel):
        return model
    if hasattr(model, "config") and isinstance(model, torch.nn.Module):
        return TaskModel(model, task, pooling, normalize)
    raise ConfigError(f"student.factory: {spec} returned {type(model).__name__}; return a TaskModel or a "
                      "Hugging Face PreTrainedModel")


def check_tokenizer_fits(student: TaskModel, tokenizer: Any) -> None:
    """Raises ConfigError when the teacher's tokenizer emits ids beyond the student's embedding table."""
    vocab = getattr(student.backbone.config, "vocab_size", None)
    if student.spec.modality == "text" and vocab is not None and len(tokenizer) > vocab:
        raise ConfigError(f"student: vocab_size {vocab} is smaller than the teacher tokenizer's {len(tokenizer)} "
                          "tokens; the student uses the teacher's tokenizer, so set vocab_size to at least that")


def check_output_width(student: TaskModel, tokenizer: Any, texts: list[str], width: int) -> None:
    """Raises ConfigError when the student's outputs are not as wide as the teacher's (losses compare them)."""
    with torch.no_grad():
        got = student.eval()(**model_inputs(student, tokenizer, texts[:2], 32)).shape[-1]
    if got != width:
        raise ConfigError(f"student: outputs have {got} values per input but the teacher's have {width}; "
                          "output losses compare them one to one, so match hidden_size (or num_labels)")
