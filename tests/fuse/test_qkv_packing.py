"""Packed-QKV self-attention (ort form): three projections + MultiHeadAttention → one com.microsoft.Attention."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from support.fusion_graphs import assert_same_outputs, fused_copy, ops, sdpa_decomposed

from edgedistill.artifacts import Artifact
from edgedistill.config import ExportConfig, FuseConfig, quantize_step
from edgedistill.export.exporter import export_onnx
from edgedistill.fuse import pack_qkv
from edgedistill.fuse.stage import run as fuse_stage
from edgedistill.models.task_model import load_task_model


def packed_copy(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    fused, _ = fused_copy(model, "ort")
    return fused, pack_qkv(fused).as_dict()


@pytest.mark.parametrize("kwargs", [{}, {"mask": None}, {"causal": True}], ids=["padding", "unmasked", "causal"])
def test_self_attention_packs_into_one_gemm_and_matches(kwargs):
    model = sdpa_decomposed(**kwargs)
    packed, counts = packed_copy(model)
    assert counts["found"] == 1 and counts["fused"] == 1
    assert ops(packed).count("Attention") == 1 and "MultiHeadAttention" not in ops(packed)
    assert ops(packed).count("MatMul") == 1  # only the output projection is left outside
    node = next(n for n in packed.graph.node if n.op_type == "Attention")
    weight = next(i for i in packed.graph.initializer if i.name == node.input[1])
    assert node.domain == "com.microsoft" and list(weight.dims) == [16, 48]
    assert_same_outputs(model, packed)


def test_cross_attention_stays_multihead_attention():
    packed, counts = packed_copy(sdpa_decomposed(cross=True))
    assert counts["fused"] == 0 and "different tensors (cross-attention)" in counts["skipped"][0]["reason"]
    assert ops(packed).count("MultiHeadAttention") == 1


def test_tiny_bert_stage_packs_every_layer_adds_the_unpadded_fast_path_and_quantizes(tiny_bert: Path, tmp_path):
    from edgedistill.quantize.stage import run as quantize_stage

    model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
    export_onnx(model, tokenizer, ExportConfig(opset=20), tmp_path / "export" / "model.onnx")
    source = Artifact("student-onnx", "onnx", tmp_path / "export" / "model.onnx", "sentence-embedding")
    fused = fuse_stage(FuseConfig(), source, tmp_path / "fuse")
    assert fused.meta["qkv_packed"] == 2 and fused.meta["unpadded_fast_path"] == 2
    assert fused.meta["verification"]["passed"]
    graph_ops = [n.op_type for n in onnx.load(str(fused.path)).graph.node]
    assert graph_ops.count("If") == 2 and not {"Attention", "MultiHeadAttention"} & set(graph_ops)
    plain = fuse_stage(FuseConfig(unpadded_fast_path=False), source, tmp_path / "fuse-plain")
    graph_ops = [n.op_type for n in onnx.load(str(plain.path)).graph.node]
    assert graph_ops.count("Attention") == 2 and "If" not in graph_ops
    unpacked = fuse_stage(FuseConfig(pack_qkv=False), source, tmp_path / "fuse-mha")
    assert unpacked.meta["qkv_packed"] == 0 and unpacked.meta["unpadded_fast_path"] == 2
    int8 = quantize_stage(quantize_step(mode="dynamic-int8"), fused, tmp_path / "int8", None)
    import onnxruntime as ort

    quantized = onnx.load(str(int8.path))
    weights = {i.name for i in quantized.graph.initializer}
    assert not [n for n in quantized.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    int8_ops = [n.op_type for n in quantized.graph.node]
    assert "If" not in int8_ops and int8_ops.count("QAttention") == 2  # quantized from the plain graph
    for texts in (["a man plays the guitar", "the dog runs in the park with a ball"], ["a man plays the guitar"]):
        feeds = dict(tokenizer(texts, padding=True, return_tensors="np"))  # padded, then unpadded (batch 1)
        run = {p: ort.InferenceSession(str(p)).run(None, {k: v.astype(np.int64) for k, v in feeds.items()})[0]
               for p in (plain.path, fused.path, int8.path)}
        np.testing.assert_allclose(run[fused.path], run[plain.path], atol=1e-5)
        cosine = (run[fused.path] * run[int8.path]).sum(-1)  # both outputs are L2-normalised
        assert cosine.min() > 0.98
