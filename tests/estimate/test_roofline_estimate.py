"""Roofline estimate: hand-computed FLOPs on small graphs, and published measurements it must stay below."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgedistill.errors import ConfigError, InputError
from edgedistill.estimate import estimate, estimate_graph, format_estimate
from edgedistill.targets import load_target

F = TensorProto.FLOAT


def model(nodes: list[onnx.NodeProto], inputs: list[tuple[str, list]], outputs: list[str],
          inits: list[onnx.TensorProto] = ()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F, None) for n in outputs], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def orin():
    return load_target("jetson-agx-orin-64gb")


def test_matmul_flops_and_bytes_by_hand():
    m = model([helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")], [("a", ["batch", 3, 4]), ("b", [4, 5])],
              ["y"])
    est = estimate_graph(m, orin(), "fp32", dims={"batch": 2})
    assert est.flops == 2 * (2 * 3 * 5) * 4  # 2 x outputs x K = 240
    assert est.nodes[0].cost.bytes == (24 + 20 + 30) * 4
    assert est.min_bytes == (24 + 20 + 30) * 4
    half = estimate_graph(m, orin(), "fp16", dims={"batch": 2})
    assert half.nodes[0].cost.bytes == (24 + 20 + 30) * 2


def test_gemm_with_transposed_a_and_bias():
    m = model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1)], [("a", [4, 3]), ("b", [4, 5]), ("c", [5])],
              ["y"])
    est = estimate_graph(m, orin(), "fp32")
    assert est.flops == 2 * 3 * 5 * 4 + 3 * 5


def test_conv_and_grouped_conv_by_hand():
    m = model([helper.make_node("Conv", ["x", "w", "bias"], ["y"], pads=[1, 1, 1, 1]),
               helper.make_node("Conv", ["y", "w2"], ["z"], group=2, strides=[2, 2])],
              [("x", [1, 3, 8, 8]), ("w", [4, 3, 3, 3]), ("bias", [4]), ("w2", [6, 2, 1, 1])], ["z"])
    est = estimate_graph(m, orin(), "fp32")
    conv1 = 2 * (4 * 8 * 8) * (3 * 3 * 3) + 4 * 8 * 8  # outputs x C_in x k x k, plus bias
    conv2 = 2 * (6 * 4 * 4) * 2  # stride 2 halves 8x8 to 4x4; each output sees C_in/groups = 2 inputs
    assert [n.cost.flops for n in est.nodes] == [conv1, conv2]


def test_shape_ops_move_nothing_and_gather_reads_rows():
    table = helper.make_tensor("table", F, [1000, 8], np.zeros(8000, np.float32))
    m = model([helper.make_node("Gather", ["table", "ids"], ["e"]),
               helper.make_node("Reshape", ["e", "shape"], ["y"])],
              [("ids", [2, 5])], ["y"], [table, helper.make_tensor("shape", TensorProto.INT64, [2], [10, 8])])
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    est = estimate_graph(m, orin(), "fp32")
    gather, reshape = est.nodes
    assert gather.cost.bytes == 10 * 8 * 4 * 2 + 10 * 8  # rows read + output written + int64 ids
    assert reshape.cost.bytes == 0
    assert est.min_bytes < 1000 * 8 * 4  # the whole table is not required reading


def test_unsized_dimension_names_the_option():
    m = model([helper.make_node("Relu", ["x"], ["y"])], [("x", ["batch", "sequence"])], ["y"])
    with pytest.raises(InputError, match=r"'sequence'.*--dim sequence=N"):
        estimate_graph(m, orin(), "fp16", dims={"batch": 1})


def test_fp8_on_orin_is_refused():
    m = model([helper.make_node("Relu", ["x"], ["y"])], [("x", [1])], ["y"])
    with pytest.raises(ConfigError, match=r"no fp8 .*--precision"):
        estimate_graph(m, orin(), "fp8")


def test_file_entry_point_and_label(tmp_path):
    m = model([helper.make_node("MatMul", ["a", "b"], ["y"])], [("a", ["batch", "sequence", 8]), ("b", [8, 8])], ["y"])
    m.graph.output[0].type.tensor_type.shape.dim.add().dim_param = "batch"
    m.metadata_props.add(key="edgedistill.max_length", value="16")
    onnx.save(m, tmp_path / "m.onnx")
    est = estimate(tmp_path / "m.onnx", "rtx-4090")
    assert est.precision == "fp16" and est.flops == 2 * 16 * 8 * 8
    text = format_estimate(est)
    assert text.startswith("ESTIMATE") and "not a measurement" in text
    assert est.to_dict()["label"] == est.label


# ---------------------------------------------------------------- published measurements


def resnet50() -> onnx.ModelProto:
    """ResNet-50 v1.5 topology at 224x224; weights are graph inputs (shapes only, no data)."""
    nodes, inputs = [], [("x", [1, 3, 224, 224])]

    def conv(x, cin, cout, k, stride=1, relu=True):
        name = f"c{len(nodes)}"
        inputs.append((f"{name}.w", [cout, cin, k, k]))
        nodes.append(helper.make_node("Conv", [x, f"{name}.w"], [name], strides=[stride] * 2, pads=[k // 2] * 4))
        if relu:
            nodes.append(helper.make_node("Relu", [name], [name + "r"]))
            return name + "r"
        return name

    h = conv("x", 3, 64, 7, 2)
    nodes.append(helper.make_node("MaxPool", [h], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    h, cin = "pool", 64
    for stage, (width, blocks) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
        for b in range(blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            y = conv(conv(conv(h, cin, width, 1), width, width, 3, stride), width, 4 * width, 1, relu=False)
            skip = conv(h, cin, 4 * width, 1, stride, relu=False) if b == 0 else h
            nodes.append(helper.make_node("Add", [y, skip], [y + "a"]))
            nodes.append(helper.make_node("Relu", [y + "a"], [y + "o"]))
            h, cin = y + "o", 4 * width
    nodes += [helper.make_node("GlobalAveragePool", [h], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1)]
    inputs += [("fc.w", [1000, 2048]), ("fc.b", [1000])]
    return model(nodes, inputs, ["logits"])


def bert_large(seq: int = 384, layers: int = 24, hidden: int = 1024, heads: int = 16) -> onnx.ModelProto:
    """BERT-large encoder (decomposed attention); weights are graph inputs (shapes only, no data)."""
    d = hidden // heads
    shapes = [helper.make_tensor("split", TensorProto.INT64, [4], [1, seq, heads, d]),
              helper.make_tensor("seq3", TensorProto.INT64, [3], [1, seq, hidden])]
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["h0"])]
    inputs: list[tuple[str, list]] = [("ids", [1, seq]), ("emb", [30522, hidden])]
    h = "h0"
    for i in range(layers):
        p = f"l{i}."
        inputs += [(p + w, [hidden, hidden]) for w in ("q", "k", "v", "o")]
        inputs += [(p + "f1", [hidden, 4 * hidden]), (p + "f2", [4 * hidden, hidden]), (p + "g", [hidden]),
                   (p + "b", [hidden])]
        for w, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
            nodes += [helper.make_node("MatMul", [h, p + w], [p + w + "1"]),
                      helper.make_node("Reshape", [p + w + "1", "split"], [p + w + "2"]),
                      helper.make_node("Transpose", [p + w + "2"], [p + w + "3"], perm=perm)]
        nodes += [
            helper.make_node("MatMul", [p + "q3", p + "k3"], [p + "s"]),  # (1, H, S, S)
            helper.make_node("Softmax", [p + "s"], [p + "p"], axis=-1),
            helper.make_node("MatMul", [p + "p", p + "v3"], [p + "c"]),  # (1, H, S, D)
            helper.make_node("Transpose", [p + "c"], [p + "ct"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [p + "ct", "seq3"], [p + "cm"]),  # (1, S, H·D)
            helper.make_node("MatMul", [p + "cm", p + "o"], [p + "ao"]),
            helper.make_node("Add", [p + "ao", h], [p + "r1"]),
            helper.make_node("LayerNormalization", [p + "r1", p + "g", p + "b"], [p + "n1"], axis=-1),
            helper.make_node("MatMul", [p + "n1", p + "f1"], [p + "f"]),
            helper.make_node("Gelu", [p + "f"], [p + "fg"]),
            helper.make_node("MatMul", [p + "fg", p + "f2"], [p + "f2o"]),
            helper.make_node("Add", [p + "f2o", p + "n1"], [p + "r2"]),
            helper.make_node("LayerNormalization", [p + "r2", p + "g", p + "b"], [p + "out"], axis=-1),
        ]
        h = p + "out"
    m = model(nodes, inputs, [h], shapes)
    m.graph.input[0].type.tensor_type.elem_type = TensorProto.INT64
    return m


def matrix_flops(est) -> float:
    return sum(n.cost.flops for n in est.nodes if n.cost.op_type in ("Conv", "Gemm", "MatMul"))


def test_resnet50_flops_match_the_known_count():
    est = estimate_graph(resnet50(), orin(), "int8")
    assert est.unknown_nodes == 0
    assert 4.05e9 < matrix_flops(est) / 2 < 4.15e9  # ResNet-50 v1.5: about 4.1 GMAC at 224x224


def test_bert_large_flops_match_the_formula():
    est = estimate_graph(bert_large(), orin(), "int8")
    assert est.unknown_nodes == 0
    s, h = 384, 1024
    macs = 24 * (12 * s * h * h + 2 * s * s * h)  # QKVO + FFN projections, QKᵀ and PV
    assert matrix_flops(est) == 2 * macs


@pytest.mark.parametrize(("graph", "measured_ms"), [(resnet50, 0.640), (bert_large, 5.70)])
def test_estimate_stays_below_mlperf_v31_on_agx_orin(graph, measured_ms):
    """MLPerf Inference v3.1, Jetson AGX Orin 64G, TensorRT 8.5.2, single-stream p90 (INT8)."""
    m = graph()
    for precision in ("int8", "fp16"):
        est = estimate_graph(m, orin(), precision)
        assert est.lower_bound_ms < measured_ms if precision == "int8" else est.lower_bound_ms > 0
    int8 = estimate_graph(m, orin(), "int8")
    assert int8.lower_bound_ms > 0.05 * measured_ms  # a bound, but not a vacuous one


def test_dynamo_export_shapes_are_observed_when_inference_loses_them(tiny_bert, tmp_path):
    """Static inference loses dynamo exports' Shape→Squeeze→Slice chains; one ORT run recovers every shape."""
    from edgedistill.config import ExportConfig
    from edgedistill.export.exporter import export_onnx
    from edgedistill.models.task_model import load_task_model

    model, tok = load_task_model(tiny_bert, "sentence-embedding")
    path = tmp_path / "m.onnx"
    export_onnx(model, tok, ExportConfig(opset=18, dynamic={"batch": [1, 4], "sequence": [1, 32]}), path)
    est = estimate(path, "jetson-orin-nano-8gb", "fp16", {"batch": 1, "sequence": 16})
    assert est.unknown_nodes == 0
    # 2 layers x (4 projections 2*16*32*32 + FFN 2 * 2*16*32*64 + scores/context 2 * 2*16*16*32) = 2 * 163840,
    # plus mean pooling as one (1, 16) @ (16, 32) MatMul
    layers = 2 * (4 * 2 * 16 * 32 * 32 + 2 * 2 * 16 * 32 * 64 + 2 * 2 * 16 * 16 * 32)
    assert matrix_flops(est) == pytest.approx(layers + 2 * 16 * 32)


def test_fused_graphs_count_their_attention_and_the_fast_paths_branch(tiny_bert, tmp_path):
    """The ort form's MultiHeadAttention is costed, and its unpadded fast path (an If) counts as one branch: the
    same FLOPs with and without the fast path, and as many as the unfused export."""
    from edgedistill.artifacts import Artifact
    from edgedistill.config import ExportConfig, FuseConfig
    from edgedistill.export.exporter import export_onnx
    from edgedistill.fuse.stage import run as fuse
    from edgedistill.models.task_model import load_task_model

    model, tok = load_task_model(tiny_bert, "sentence-embedding")
    path = tmp_path / "m.onnx"
    export_onnx(model, tok, ExportConfig(opset=18, dynamic={"batch": [1, 4], "sequence": [1, 32]}), path)
    plain = fuse(FuseConfig(unpadded_fast_path=False), Artifact("m", "onnx", path), tmp_path / "plain")
    gated = fuse(FuseConfig(unpadded_min_scores=0), Artifact("m", "onnx", path), tmp_path / "gated")
    assert gated.meta["unpadded_fast_path"] == 2
    dims = {"batch": 1, "sequence": 16}
    flops = [estimate(p, "jetson-orin-nano-8gb", "fp16", dims) for p in (path, plain.path, gated.path)]
    assert all(e.unknown_nodes == 0 for e in flops)
    assert flops[2].flops == pytest.approx(flops[1].flops, rel=1e-4)  # + the gate's few comparisons
    assert flops[1].flops == pytest.approx(flops[0].flops, rel=0.05)  # fusion moves a few elementwise FLOPs


def test_a_dimension_the_model_lacks_is_refused(tiny_bert, tmp_path):
    from edgedistill.config import ExportConfig
    from edgedistill.errors import InputError
    from edgedistill.export.exporter import export_onnx
    from edgedistill.models.task_model import load_task_model

    model, tok = load_task_model(tiny_bert, "sentence-embedding")
    path = tmp_path / "m.onnx"
    export_onnx(model, tok, ExportConfig(opset=18, dynamic={"batch": [1, 4], "sequence": [1, 32]}), path)
    with pytest.raises(InputError, match="--dim sequnce: the model has no dimension 'sequnce'; did you mean"):
        estimate(path, "jetson-orin-nano-8gb", "fp16", {"sequnce": 16})
