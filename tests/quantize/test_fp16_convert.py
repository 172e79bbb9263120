"""FP16 conversion of the tiny BERT: weights FP16, fragile ops and I/O FP32, output close to FP32."""

from __future__ import annotations

import onnx
from support.quantize import embed, min_cosine

from edgedistill.config import quantize_step
from edgedistill.quantize import stage


def fed_by_cast_to_fp32(model: onnx.ModelProto, node: onnx.NodeProto) -> bool:
    producer = {out: n for n in model.graph.node for out in n.output}.get(node.input[0])
    return producer is not None and producer.op_type == "Cast" and producer.attribute[0].i == onnx.TensorProto.FLOAT


def test_fp16_keeps_fragile_ops_and_io_in_fp32(float_model, tiny_texts, tmp_path):
    art = stage.run(quantize_step(mode="fp16"), float_model, tmp_path)
    model = onnx.load(str(art.path))
    assert "LayerNormalization" in art.meta["fp32_ops"] and "Softmax" in art.meta["fp32_ops"]
    matmul_weights = {n.input[1] for n in model.graph.node if n.op_type == "MatMul"}
    inits = {i.name: i.data_type for i in model.graph.initializer}
    assert any(inits.get(w) == onnx.TensorProto.FLOAT16 for w in matmul_weights)
    fragile = [n for n in model.graph.node if n.op_type in ("LayerNormalization", "Softmax")]
    assert len(fragile) == 7 and all(fed_by_cast_to_fp32(model, n) for n in fragile)
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    texts = tiny_texts[:16]
    assert min_cosine(embed(float_model.path, texts), embed(art.path, texts)) > 0.999


def test_fp16_io_when_asked(float_model, tmp_path):
    art = stage.run(quantize_step(mode="fp16", keep_io_fp32=False), float_model, tmp_path)
    assert onnx.load(str(art.path)).graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
