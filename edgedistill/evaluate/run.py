"""Evaluate one artifact: fidelity to the teacher on held-out texts, and Spearman on each STS set."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact
from edgedistill.config import EvaluateConfig
from edgedistill.data.stsb import StsPairs
from edgedistill.engines.base import Session, open_session
from edgedistill.engines.size import model_file_mb
from edgedistill.engines.tokenizer import load_tokenizer
from edgedistill.evaluate.metrics import encode, fidelity_cosine, sts_spearman


def teacher_reference(teacher: Artifact, heldout: list[str], cfg: EvaluateConfig,
                      threads: int | None = None) -> np.ndarray:
    """The teacher's embeddings of the held-out texts, (N, D): computed once, compared with every artifact."""
    session = open_session(teacher, threads=threads)
    return encode(session, load_tokenizer(teacher), heldout, cfg.batch_size, cfg.max_length)


def sts_scores(session: Session, tokenizer: Any, sts: dict[str, StsPairs], cfg: EvaluateConfig) -> dict[str, float]:
    """``{"sts_<name>_spearman": value}`` for each STS set."""
    out = {}
    for name, pairs in sts.items():
        emb1 = encode(session, tokenizer, pairs.sentences1, cfg.batch_size, cfg.max_length)
        emb2 = encode(session, tokenizer, pairs.sentences2, cfg.batch_size, cfg.max_length)
        out[f"sts_{name}_spearman"] = sts_spearman(emb1, emb2, pairs.scores)
    return out


def evaluate_artifact(artifact: Artifact, *, teacher_embeddings: np.ndarray | None, heldout: list[str],
                      sts: dict[str, StsPairs], cfg: EvaluateConfig, threads: int | None = None) -> dict[str, Any]:
    """Measure one artifact's quality.

    Returns:
        ``{"kind", "path", "backend", "params" (torch only, else None), "file_mb",
        "fidelity_cosine" (None without teacher embeddings or held-out texts), "sts_<name>_spearman"...}``
    Raises:
        InputError: the artifact cannot be loaded, or its embeddings do not match the teacher's shape.
    """
    session = open_session(artifact, threads=threads)
    tokenizer = load_tokenizer(artifact)
    fidelity = None
    if teacher_embeddings is not None and heldout:
        student = encode(session, tokenizer, heldout, cfg.batch_size, cfg.max_length)
        fidelity = fidelity_cosine(student, teacher_embeddings)
    params = getattr(session, "num_parameters", None)
    return {
        "kind": artifact.kind,
        "path": str(artifact.path),
        "backend": session.backend,
        "params": int(params) if params is not None else None,
        "file_mb": round(model_file_mb(artifact), 3),
        "fidelity_cosine": fidelity,
        **sts_scores(session, tokenizer, sts, cfg),
    }
