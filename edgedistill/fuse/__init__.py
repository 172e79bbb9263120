"""Graph fusions for exported transformers: attention into one fused node, and ONNX Runtime's other fusions.

Entry points: :func:`fuse_attention` (in memory, one form), :func:`pack_qkv` (``ort`` form: one QKV GEMM),
:func:`edgedistill.fuse.stage.run` (the pipeline stage: fuse a file, verify, publish).
"""

from __future__ import annotations

import onnx

from edgedistill.fuse.attention import AttentionOpFusion, DecomposedAttentionFusion
from edgedistill.fuse.base import FusionCounts
from edgedistill.fuse.forms import FORMS, MaskInputs
from edgedistill.fuse.graph import Graph
from edgedistill.fuse.qkv_packing import QkvPackingFusion

__all__ = ["FORMS", "FusionCounts", "fuse_attention", "pack_qkv"]


def fuse_attention(model: onnx.ModelProto, form: str) -> list[FusionCounts]:
    """Rewrite every recognised attention block of ``model`` (in place) into ``form``.

    Returns:
        One :class:`FusionCounts` per fusion (decomposed attention, opset-23 ``Attention`` op).
    Raises:
        InputError: the form needs a newer opset than the model has.
        ValueError: ``form`` is not one of :data:`FORMS`.
    """
    graph = Graph(model)
    masks = MaskInputs(graph, {})
    return [fusion(graph, form, masks).apply() for fusion in (DecomposedAttentionFusion, AttentionOpFusion)]


def pack_qkv(model: onnx.ModelProto) -> FusionCounts:
    """Turn ``ort``-form self-attention (three projections + MultiHeadAttention) into packed-QKV ``Attention``."""
    return QkvPackingFusion(Graph(model)).apply()
