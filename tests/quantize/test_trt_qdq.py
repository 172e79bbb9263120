"""INT8 QDQ for TensorRT: the structure TensorRT's parser accepts, checked on the tiny BERT and on bad graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.quantize import embed, min_cosine, op_counts

from edgedistill.config import quantize_step
from edgedistill.quantize import stage
from edgedistill.quantize.trt_qdq import trt_problems


@pytest.fixture(scope="module")
def trt_model(float_model, quant_data, tmp_path_factory):
    return stage.run(quantize_step(mode="trt-int8"), float_model, tmp_path_factory.mktemp("trt"), quant_data)


def test_qdq_only_on_weight_matmul_inputs(trt_model):
    model = onnx.load(str(trt_model.path))
    assert trt_problems(model) == []
    counts = op_counts(trt_model.path)
    assert counts["QuantizeLinear"] == counts["DequantizeLinear"] == 2 * 12  # a dedicated pair per input
    users = {name: n.op_type for n in model.graph.node for name in n.input}
    assert {users[n.output[0]] for n in model.graph.node if n.op_type == "DequantizeLinear"} == {"MatMul"}
    assert all(n.domain == "" for n in model.graph.node)


def test_weights_per_channel_symmetric(trt_model):
    model = onnx.load(str(trt_model.path))
    inits = {i.name: i for i in model.graph.initializer}
    weight_qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] in inits]
    assert len(weight_qs) == 12
    for q in weight_qs:
        scale = numpy_helper.to_array(inits[q.input[1]])
        assert scale.shape == (inits[q.input[0]].dims[1],)  # MatMul weight (K, N): one scale per output channel
        assert not numpy_helper.to_array(inits[q.input[2]]).any()


def test_trt_model_close_to_float(trt_model, float_model, quant_data):
    texts = quant_data.eval_texts[:16]
    assert min_cosine(embed(float_model.path, texts), embed(trt_model.path, texts)) > 0.99


def test_asymmetric_activations_are_not_an_option():
    """TensorRT takes symmetric activations only, so trt-int8 has no such option to get wrong."""
    with pytest.raises(ValueError, match="trt-int8.symmetric_activations\n  Extra inputs are not permitted"):
        quantize_step(mode="trt-int8", symmetric_activations=False)


def qdq_graph(zero_point: int, zp_type: int, consumer: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             helper.make_tensor("zp", zp_type, [], [zero_point])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq"),
             helper.make_node(consumer, ["xd"], ["y"], name="user")]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits))


@pytest.mark.parametrize("zp,zp_type,consumer,problem", [
    (3, TensorProto.INT8, "Relu", "non-zero zero point"),
    (128, TensorProto.UINT8, "Relu", "zero point is UINT8, not INT8"),
    (0, TensorProto.INT8, "Softmax", "dq: DequantizeLinear feeds ['Softmax']"),
])
def test_problems_are_found(zp, zp_type, consumer, problem):
    assert any(problem in p for p in trt_problems(qdq_graph(zp, zp_type, consumer)))
