"""The evaluate stage: every artifact measured the same way, with its Task's metrics, into ``out/metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.config import EvaluateConfig
from edgedistill.config.base import DEFAULT_TASK
from edgedistill.evaluate.run import evaluate_artifact, teacher_reference
from edgedistill.evaluate.sets import read_sets
from edgedistill.progress import console
from edgedistill.report.ledger import IDENTITY

METRICS = "metrics.json"


def run(cfg: EvaluateConfig, models: list[Artifact], out: Path, teacher: Artifact | None, heldout: list[str],
        sets: dict[str, Any], reference: np.ndarray | None = None) -> Artifact:
    """Evaluate ``models`` into ``out/metrics.json``: fidelity to ``teacher`` (or to ``reference``, the stored
    outputs of a black-box teacher) on ``heldout``, and the task metric on each configured scored set.

    Returns:
        The metrics artifact; ``meta["quality"]`` holds per artifact its fidelity and scored-set metrics.
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
    task = models[0].task if models else DEFAULT_TASK
    atomic_write_json(out / METRICS, {"artifacts": results, "order": [a.name for a in models], "task": task})
    quality = {n: {k: v for k, v in r.items() if k not in IDENTITY} for n, r in results.items()}
    return Artifact("quality-metrics", "metrics", out / METRICS, task, {"quality": quality})
