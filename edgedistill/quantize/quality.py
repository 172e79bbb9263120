"""Quality of a candidate model against the float model it came from, on the evaluation texts.

The float model's embeddings are computed once; every candidate is scored with the same
:func:`edgedistill.evaluate.encode` the evaluate stage uses, so the numbers agree with the report's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact
from edgedistill.engines import load_preprocessor, open_session
from edgedistill.errors import InputError
from edgedistill.evaluate import encode, sts_spearman
from edgedistill.quantize.data import QuantizeData
from edgedistill.tasks import get_task


@dataclass(frozen=True)
class Quality:
    fidelity_cosine: float
    sts_spearman: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"fidelity_cosine": round(self.fidelity_cosine, 6),
                "sts_spearman": None if self.sts_spearman is None else round(self.sts_spearman, 3)}


class Reference:
    """The float model's outputs on the evaluation data; ``score(path)`` compares a candidate with them."""

    def __init__(self, model: Artifact, data: QuantizeData | None, need_sts: bool = False):
        if data is None or not data.eval_texts:
            raise InputError("the sensitivity analysis and the budget need evaluation texts (data.eval_texts)")
        if need_sts and data.sts is None:
            raise InputError("an sts_drop budget needs STS pairs (data.sts); or budget on fidelity_cosine")
        self.model, self.data, self.need_sts = model, data, need_sts
        self.task = get_task(model.task)
        self.tokenizer = load_preprocessor(model)
        self.embeddings, self.sts = self.outputs(model.path)

    def outputs(self, path: Path) -> tuple[np.ndarray, float | None]:
        """Embeddings of the evaluation texts (N, D) and the STS Spearman (None without STS pairs)."""
        session = open_session(Artifact(self.model.name, "onnx", path, self.model.task), threads=self.data.threads)
        emb = self.encode(session, self.data.eval_texts)
        sts = None
        if self.need_sts and self.data.sts is not None:
            pairs = self.data.sts
            emb1, emb2 = self.encode(session, pairs.sentences1), self.encode(session, pairs.sentences2)
            sts = sts_spearman(emb1, emb2, pairs.scores)
        return emb, sts

    def encode(self, session: Any, texts: list[str]) -> np.ndarray:
        return encode(session, self.task, self.tokenizer, texts, self.data.batch_size, self.data.max_length)

    def score(self, path: Path) -> Quality:
        emb, sts = self.outputs(path)
        return Quality(self.task.fidelity(emb, self.embeddings)[self.task.fidelity_key], sts)
