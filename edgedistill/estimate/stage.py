"""The estimate stage: a roofline estimate of an ONNX model on a target, recorded in ``out/estimate.json``. It is
an ESTIMATE from the target's peak figures, never a measurement."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.estimate.roofline import Estimate

ESTIMATE = "estimate.json"


def run(found: Estimate, source: Artifact, target: str, out: Path) -> Artifact:
    """Record ``found`` (the estimate of ``source`` on ``target``) into ``out/estimate.json``.

    Returns:
        The estimate artifact; ``meta["estimate"]`` holds its totals (the per-node table is in the file only).
    """
    doc = found.to_dict()
    atomic_write_json(out / ESTIMATE, doc)
    totals = {k: v for k, v in doc.items() if k != "top_nodes"}
    return Artifact(f"{source.name}-estimate-{target}", "estimate", out / ESTIMATE, source.task, {"estimate": totals})
