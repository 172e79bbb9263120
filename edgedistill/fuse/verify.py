"""Verification of a rewritten graph against the graph it came from, in ONNX Runtime.

The batches cover what a fusion can get wrong: a single full row, short and long sequences, and padding-heavy
batches whose rows range from one token to the full width (the key-padding mask must be carried exactly); an
image model gets images at each batch size. Inputs come from :func:`edgedistill.tasks.synthetic_feeds` on what
the graph takes; outputs are compared with :mod:`edgedistill.verification`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgedistill import verification
from edgedistill.errors import VerificationError
from edgedistill.tasks.inputs import spec_of_onnx, synthetic_feeds

# (batch, width, padded): padded batches have rows from 1 token up to the full width
VERIFY_SHAPES = ((1, 8, False), (1, 128, False), (4, 64, True), (8, 128, True), (3, 17, True))
REFERENCE = "the unfused graph (ONNX Runtime CPU, optimizations off)"


def verification_feeds(model: onnx.ModelProto, seed: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """``(label, feeds)`` for the graph's token inputs at :data:`VERIFY_SHAPES`, or for its image input at each of
    their batch sizes, clamped into the sizes the graph takes (its fixed dimensions, the ranges it was exported
    for: a model's position table may be shorter than the widest shape)."""
    spec = spec_of_onnx(model)
    shapes = sorted({(*spec.fit(batch, None if spec.is_image else width), padded and not spec.is_image)
                     for batch, width, padded in VERIFY_SHAPES}, key=lambda s: (s[1] or 0, s[0], s[2]))
    return [(spec.shape_label(batch, width) + (" padded" if padded else ""),
             synthetic_feeds(spec, batch, width, seed=seed + i, padded=padded))
            for i, (batch, width, padded) in enumerate(shapes)]


def run_session(
    path: Path | bytes, feeds: dict[str, np.ndarray], disable_optimizations: bool = False
) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if disable_optimizations:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = path if isinstance(path, bytes) else str(path)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def compare_graphs(reference: Path, candidate: Path, atol: float, min_cosine: float = 0.99999) -> dict[str, Any]:
    """Run both graphs in ONNX Runtime (CPU) on :func:`verification_feeds` and compare every output.

    The reference runs without graph optimizations, so it is the exported graph's own arithmetic.

    Returns:
        The report of :func:`edgedistill.verification.report`.
    Raises:
        VerificationError: the candidate lost an output.
    """
    model = onnx.load(str(reference), load_external_data=False)
    results: list[dict[str, Any]] = []
    for label, feeds in verification_feeds(model):
        want = run_session(reference, feeds, disable_optimizations=True)
        got = run_session(candidate, feeds)
        for name, ref in want.items():
            if name not in got:
                raise VerificationError(f"{candidate}: output '{name}' is missing after the rewrite")
            results.append(verification.result_row(name, label, ref, got[name], atol, min_cosine))
    return verification.report(results, atol, min_cosine, REFERENCE)
