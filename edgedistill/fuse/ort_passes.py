"""ONNX Runtime's own graph fusions, applied offline and saved into the artifact.

Measured on our dynamo exports (ORT 1.32): ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert")``
fuses BiasGelu but neither attention (the SDPA decomposition, onnxruntime#21208) nor SkipLayerNormalization
(its symbolic shape inference fails on the export). The session-level optimizer at ``ORT_ENABLE_EXTENDED``
does fuse SkipLayerNormalization, BiasGelu and FusedMatMul on the same graph, and leaves a hardware-independent
graph (unlike ``ORT_ENABLE_ALL``, whose NCHWc layouts are CPU specific), so that is the pass used here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def ort_extended_fusions(src: Path, dst: Path) -> dict[str, int]:
    """Save ``src`` as ONNX Runtime's EXTENDED-level optimised graph at ``dst``; returns op counts of new fused ops.

    The result holds ``com.microsoft`` ops and runs on ONNX Runtime only (CPU and CUDA).
    """
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    before = Counter(n.op_type for n in onnx.load(str(src), load_external_data=False).graph.node)
    after = Counter(n.op_type for n in onnx.load(str(dst), load_external_data=False).graph.node)
    return {op: n for op, n in after.items() if op not in before}
