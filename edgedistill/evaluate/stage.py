"""The evaluate stage: every artifact measured the same way, with its Task's metrics, into ``out/metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.config import EvaluateConfig
from edgedistill.evaluate.run import evaluate_artifact, teacher_reference
from edgedistill.evaluate.sets import read_sets
from edgedistill.progress import console

METRICS = "metrics.json"


def run(cfg: EvaluateConfig, models: list[Artifact], out: Path, teacher: Artifact | None, heldout: list[str],
        sets: dict[str, Any], reference: np.ndarray | None = None) -> dict[str, Any]:
    """Evaluate ``models`` into ``out/metrics.json``: fidelity to ``teacher`` (or to ``reference``, the stored
    outputs of a black-box teacher) on ``heldout``, and the task metric on each configured scored set.

    Returns:
        The stage metrics: per artifact its fidelity and scored-set metrics.
    Raises:
        InputError: an artifact or a scored set cannot be read.
    """
    labelled_by = teacher or (models[0] if models else None)
    scored = read_sets(sets, labelled_by)
    outputs = teacher_reference(teacher, heldout, cfg) if teacher and heldout else reference
    results = {}
    for artifact in models:
        console.print(f"[dim]evaluating {artifact.name}[/dim]")
        results[artifact.name] = evaluate_artifact(artifact, teacher_outputs=outputs, heldout=heldout, sets=scored,
                                                   cfg=cfg)
    atomic_write_json(out / METRICS, {"artifacts": results, "order": [a.name for a in models]})
    identity = ("kind", "path", "backend", "params", "file_mb")
    return {"quality": {n: {k: v for k, v in r.items() if k not in identity} for n, r in results.items()}}
