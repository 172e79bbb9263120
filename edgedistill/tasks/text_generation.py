"""text-generation: a causal LM's next-token logits. Distilled and measured by its own stages
(:mod:`edgedistill.lm.stage`, :mod:`edgedistill.lm.evaluate_stage`); its quality is agreement with the teacher's
next-token distribution, perplexity of real text, and agreement of greedy answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from edgedistill.errors import InputError
from edgedistill.tasks.base import Outputs
from edgedistill.tasks.text import TextTask

if TYPE_CHECKING:
    from edgedistill.models.task_model import TaskModel


class TextGeneration(TextTask):
    name = "text-generation"
    output_name = "logits"
    auto_class_name = "AutoModelForCausalLM"
    distill_stage = "edgedistill.lm.stage"
    export_stage = "edgedistill.lm.export_stage"
    evaluate_stage = "edgedistill.lm.evaluate_stage"
    generative = True
    # Its token rates are measured by benchmarks/llm/token_rate.py, not by a bench stage yet; a run says it skips it.
    stages: ClassVar[tuple[str, ...]] = ("distill", "export", "fuse", "quantize", "evaluate", "report")

    def quantize_steps(self, config: Any) -> list[Any]:
        """The config's steps when it names any (``[]`` for none), else weight-only INT4 (RTN, blocks of 32)."""
        from edgedistill.config import WeightOnly

        return list(config.quantize) if "quantize" in config.model_fields_set else [WeightOnly()]

    def input_names(self, backbone: Any) -> list[str]:
        return ["input_ids", "attention_mask"]

    def head(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The next-token logits (B, S, V)."""
        logits: torch.Tensor = model.backbone(**inputs, use_cache=False).logits
        return logits

    fidelity_key = "top1_agreement"
    fidelity_keys = ("top1_agreement", "kl")

    def fidelity(self, student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
        """Top-1 agreement and mean KL(teacher ‖ student) of next-token logits (…, V) at the same positions."""
        s = torch.log_softmax(torch.as_tensor(student, dtype=torch.float32), dim=-1)
        t = torch.log_softmax(torch.as_tensor(teacher, dtype=torch.float32), dim=-1)
        kl = (t.exp() * (t - s)).sum(-1)
        return {"top1_agreement": float((s.argmax(-1) == t.argmax(-1)).float().mean()), "kl": float(kl.mean())}

    def score(self, outputs: Outputs, name: str, data: Any, labels: np.ndarray | None) -> dict[str, float]:
        raise InputError("text-generation is scored by its own evaluate stage (perplexity, agreement, "
                         "multiple choice), not on STS or labelled sets; remove data.eval / data.test")

    def selection_metric(self, has_eval: bool) -> str:
        return "top1_agreement"
