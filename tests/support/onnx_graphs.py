"""Small hand-built ONNX graphs for tests that need a model file but not a trained one."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

META = {"edgedistill.batch_range": "1,64", "edgedistill.sequence_range": "1,256", "edgedistill.max_length": "256"}


def encoder(extra: list[onnx.NodeProto] = (), qdq: str | None = None, meta: dict = META) -> onnx.ModelProto:
    """ids (batch, sequence) → embedding table → mean over sequence (batch, 4); optional Q/DQ and extra nodes."""
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["h"])]
    inits = [helper.make_tensor("table", TensorProto.FLOAT, [10, 4], np.zeros(40, np.float32))]
    if qdq:
        zero_type = TensorProto.FLOAT8E4M3FN if qdq == "fp8" else TensorProto.INT8
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", zero_type, [], [0])]
        nodes += [helper.make_node("QuantizeLinear", ["h", "s", "z"], ["hq"]),
                  helper.make_node("DequantizeLinear", ["hq", "s", "z"], ["h2"])]
    else:
        nodes.append(helper.make_node("Identity", ["h"], ["h2"]))
    nodes += [*extra, helper.make_node("ReduceMean", ["h2", "axes"], ["emb"], keepdims=0)]
    inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [1]))
    graph = helper.make_graph(
        nodes, "enc", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    return model
