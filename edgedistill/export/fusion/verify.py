"""Verification of a rewritten graph against the graph it came from, in ONNX Runtime.

The batches cover what a fusion can get wrong: a single full row, short and long sequences, and padding-heavy
batches whose rows range from one token to the full width (the key-padding mask must be carried exactly).
Each output is compared with :func:`edgedistill.export.onnx.compare` (max abs / rel difference, min row cosine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgedistill.errors import VerificationError
from edgedistill.export.onnx import compare

# (batch, width, padded): padded batches have rows from 1 token up to the full width
VERIFY_SHAPES = ((1, 8, False), (1, 128, False), (4, 64, True), (8, 128, True), (3, 17, True))


def vocab_size(model: onnx.ModelProto, ids_input: str = "input_ids") -> int:
    """Rows of the embedding table gathered by ``ids_input`` (ids below it are valid); 100 if not found."""
    sizes = {init.name: init.dims[0] for init in model.graph.initializer if init.dims}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == ids_input and node.input[0] in sizes:
            return int(sizes[node.input[0]])
    return 100


def image_input(model: onnx.ModelProto) -> tuple[str, list[int]] | None:
    """The graph's float (B, C, H, W) input with fixed C, H, W (an image model's ``pixel_values``), or None."""
    for value in model.graph.input:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tensor.shape.dim]
        if tensor.elem_type == onnx.TensorProto.FLOAT and len(dims) == 4 and all(dims[1:]):
            return value.name, dims[1:]
    return None


def image_feeds(name: str, chw: list[int], seed: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Random images at every batch size of :data:`VERIFY_SHAPES` (an image model has no padding to check)."""
    rng = np.random.default_rng(seed)
    batches = sorted({batch for batch, _, _ in VERIFY_SHAPES})
    return [(f"{b}x{'x'.join(map(str, chw))}", {name: rng.standard_normal((b, *chw)).astype(np.float32)})
            for b in batches]


def verification_feeds(model: onnx.ModelProto, seed: int = 0) -> list[tuple[str, dict[str, np.ndarray]]]:
    """``(label, feeds)`` for the graph's (B, S) token inputs (ids, attention mask and token types), or for
    its image input when it has one."""
    if image := image_input(model):
        return image_feeds(*image, seed=seed)
    rng = np.random.default_rng(seed)
    vocab = vocab_size(model)
    names = [i.name for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    batches = []
    for batch, width, padded in VERIFY_SHAPES:
        ids = rng.integers(1, vocab, size=(batch, width))
        lengths = np.linspace(width, 1, batch).round().astype(int) if padded else np.full(batch, width)
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)  # right padding
        ids = np.where(mask == 1, ids, 0)
        tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        label = f"{batch}x{width}" + (" padded" if padded else "")
        batches.append((label, {n: tensors[n] for n in names if n in tensors}))
    return batches


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
        ``{"atol", "min_cosine", "results": [{output, shape, max_abs, max_rel, min_cosine, passed}], "worst",
        "passed"}``.
    """
    model = onnx.load(str(reference), load_external_data=False)
    results: list[dict[str, Any]] = []
    for label, feeds in verification_feeds(model):
        want = run_session(reference, feeds, disable_optimizations=True)
        got = run_session(candidate, feeds)
        for name, ref in want.items():
            if name not in got:
                raise VerificationError(f"{candidate}: output '{name}' is missing after the rewrite")
            stats = compare(ref, got[name])
            passed = stats["max_abs"] <= atol and stats["min_cosine"] >= min_cosine
            results.append({"output": name, "shape": label, **stats, "passed": passed})
    return comparison_report(results, atol, min_cosine)


def comparison_report(results: list[dict[str, Any]], atol: float, min_cosine: float) -> dict[str, Any]:
    """The verification summary of per-output ``results``: tolerances, rows, the worst row and the verdict."""
    worst = max(results, key=lambda r: r["max_abs"])
    return {
        "reference": "unfused graph, ONNX Runtime CPU, optimizations off", "atol": atol, "min_cosine": min_cosine,
        "results": results, "worst": {k: worst[k] for k in ("output", "shape", "max_abs", "min_cosine")},
        "passed": all(r["passed"] for r in results),
    }


def check_comparison(report: dict[str, Any]) -> None:
    """Raise VerificationError naming the output and shape of the worst failure, if any."""
    failed = [r for r in report["results"] if not r["passed"]]
    if failed:
        r = max(failed, key=lambda r: r["max_abs"])
        raise VerificationError(
            f"fused graph differs from the unfused one at output '{r['output']}', shape {r['shape']}: "
            f"max abs diff {r['max_abs']:.2e} (atol {report['atol']:g}), min cosine {r['min_cosine']:.6f}"
        )
