"""sentence-embedding: the encoder's token states pooled (mean, CLS or max, as sentence-transformers saves it), an
optional ``Dense`` projection, L2-normalised; one (B, D) vector per text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from edgedistill.tasks.base import Outputs
from edgedistill.tasks.text import TextTask

if TYPE_CHECKING:
    from edgedistill.models.task_model import TaskModel


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str, mean: bool = True) -> torch.Tensor:
    """Pool token states (B, S, H) into one vector per text (B, H), ignoring padding.

    Mean pooling is one batched MatMul of the mask with the states (a single pass, where Mul + ReduceSum make
    two and a (B, S, H) temporary). ``mean=False`` leaves it as the masked sum, which points the same way:
    when an L2 normalisation follows, the division by the token count changes nothing and is left out.
    """
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype)  # (B, S)
    if mode == "max":
        return hidden.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
    summed = torch.matmul(mask.unsqueeze(1), hidden).squeeze(1)  # (B, 1, S) @ (B, S, H)
    return summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9) if mean else summed


class SentenceEmbedding(TextTask):
    name = "sentence-embedding"
    output_name = "sentence_embedding"
    auto_class_name = "AutoModel"

    def head(self, model: TaskModel, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        out = model.backbone(**inputs)
        scale_free = model.normalize and model.dense is None  # normalize(mean) == normalize(sum)
        emb = pool(out.last_hidden_state, inputs["attention_mask"], model.pooling, mean=not scale_free)
        if model.dense is not None:
            emb = model.dense(emb)
            emb = torch.tanh(emb) if model.dense_tanh else emb
        return nn.functional.normalize(emb, p=2, dim=-1) if model.normalize else emb

    fidelity_key = "fidelity_cosine"
    fidelity_keys = ("fidelity_cosine",)

    def fidelity(self, student: np.ndarray, teacher: np.ndarray) -> dict[str, float]:
        from edgedistill.evaluate.metrics import fidelity_cosine

        return {"fidelity_cosine": fidelity_cosine(student, teacher)}

    def score(self, outputs: Outputs, name: str, data: Any, labels: np.ndarray | None) -> dict[str, float]:
        """Spearman ×100 between the pairs' embedding cosine and the human scores of an STS set."""
        from edgedistill.evaluate.metrics import sts_spearman

        return {f"sts_{name}_spearman": sts_spearman(outputs(data.sentences1), outputs(data.sentences2), data.scores)}

    def selection_metric(self, has_eval: bool) -> str:
        return "sts_eval_spearman" if has_eval else "fidelity_cosine"
