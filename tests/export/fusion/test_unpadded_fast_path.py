"""The unpadded fast path (ort form): If(no key is padding) → MultiHeadAttention without mask, else the masked one."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fusion_graphs import batches, sdpa_decomposed
from onnx import TensorProto, helper
from test_fusion_synthetic import assert_same_outputs, fused_copy, ops

from edgedistill.export.fusion import pack_qkv
from edgedistill.export.fusion.graph import Graph, sort_topologically
from edgedistill.export.fusion.unpadded_fast_path import add_unpadded_fast_path


def fast_path_copy(model: onnx.ModelProto, packed: bool = True) -> tuple[onnx.ModelProto, dict]:
    fused, _ = fused_copy(model, "ort")
    if packed:
        pack_qkv(fused)
    return fused, add_unpadded_fast_path(fused)


def branches(model: onnx.ModelProto) -> dict[str, onnx.GraphProto]:
    node = next(n for n in model.graph.node if n.op_type == "If")
    return {a.name: a.g for a in node.attribute}


@pytest.mark.parametrize("packed", [True, False], ids=["packed-qkv", "separate-qkv"])
def test_padding_mask_becomes_an_if_with_flash_and_masked_branches_that_match(packed):
    model = sdpa_decomposed()
    result, counts = fast_path_copy(model, packed)
    fusion = "unpadded_fast_path" if packed else "unpadded_fast_path_mha"
    assert counts[fusion]["fused"] == 1
    onnx.checker.check_model(result)
    assert ops(result).count("If") == 1 and not {"Attention", "MultiHeadAttention"} & set(ops(result))
    if packed:
        assert ops(result).count("MatMul") == 2  # the QKV GEMM stays outside the If (INT8 quantizes it)
    then, other = branches(result)["then_branch"], branches(result)["else_branch"]
    flash = next(n for n in then.node if n.op_type == "MultiHeadAttention")
    masked = next(n for n in other.node if n.op_type == "MultiHeadAttention")
    assert len(flash.input) == 4 if packed else len(flash.input) == 3  # no mask: ORT's flash path
    assert len(masked.input) == 5 and masked.input[4]
    assert {a.name for a in flash.attribute} == {"num_heads", "scale"}
    assert_same_outputs(model, result)  # unmasked and padding-heavy batches, against the unfused graph


def test_the_flag_is_true_exactly_when_no_key_is_padding():
    result, _ = fast_path_copy(sdpa_decomposed())
    flag = next(n for n in result.graph.node if n.op_type == "If").input[0]
    result.graph.output.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
    session = ort.InferenceSession(result.SerializeToString(), providers=["CPUExecutionProvider"])
    for label, feeds in batches():
        assert bool(session.run([flag], feeds)[0]) == (label == "unmasked"), label


@pytest.mark.parametrize(
    "kwargs,reason",
    [({"mask": None}, "no key-padding mask"), ({"causal": True}, "causal")],
    ids=["unmasked", "causal"],
)
def test_attention_without_a_padding_mask_or_causal_stays(kwargs, reason):
    result, counts = fast_path_copy(sdpa_decomposed(**kwargs))
    assert counts["unpadded_fast_path"]["fused"] == 0 and "If" not in ops(result)
    assert reason in counts["unpadded_fast_path"]["skipped"][0]["reason"]


def test_a_mask_that_is_not_a_graph_input_stays():
    fused, _ = fused_copy(sdpa_decomposed(), "ort")
    pack_qkv(fused)
    attention = next(n for n in fused.graph.node if n.op_type == "Attention")
    derived = helper.make_node("Abs", [attention.input[3]], ["mask_abs"])
    fused.graph.node.insert(list(fused.graph.node).index(attention), derived)
    attention.input[3] = "mask_abs"
    counts = add_unpadded_fast_path(fused)["unpadded_fast_path"]
    assert counts["fused"] == 0 and "is not a (B, S) graph input" in counts["skipped"][0]["reason"]


def test_prune_keeps_what_only_a_branch_reads():
    result, _ = fast_path_copy(sdpa_decomposed())
    before = len(result.graph.node)
    assert Graph(result).prune() == 0 and len(result.graph.node) == before
    qkv = next(n for n in result.graph.node if n.op_type == "MatMul" and "qkv" in n.output[0])
    assert Graph(result).consumers(qkv.output[0])[0].op_type == "If"


def test_int8_quantization_quantizes_the_qkv_gemm_and_keeps_both_paths(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = sdpa_decomposed()
    result, _ = fast_path_copy(model)
    onnx.save(result, str(tmp_path / "fp32.onnx"))
    quantize_dynamic(str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx"), weight_type=QuantType.QInt8)
    int8 = onnx.load(str(tmp_path / "int8.onnx"))
    assert ops(int8).count("If") == 1 and "MatMul" not in ops(int8)  # both GEMMs quantized, none float
    session = ort.InferenceSession(str(tmp_path / "int8.onnx"), providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for label, feeds in batches():
        got, want = session.run(["y"], feeds)[0], reference.run(["y"], feeds)[0]
        cosine = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
        assert cosine.min() > 0.98, label


def test_sort_topologically_puts_an_if_after_what_its_branches_read():
    result, _ = fast_path_copy(sdpa_decomposed())
    assert not sort_topologically(result.graph)  # already in order: nothing moves
    nodes = list(result.graph.node)
    choice = next(n for n in nodes if n.op_type == "If")
    shuffled = onnx.ModelProto()
    shuffled.CopyFrom(result)
    del shuffled.graph.node[:]
    shuffled.graph.node.extend([choice] + [n for n in nodes if n is not choice])  # as a quantizer may leave it
    with pytest.raises(onnx.checker.ValidationError, match="topologically sorted"):
        onnx.checker.check_model(shuffled)
    assert sort_topologically(shuffled.graph)
    onnx.checker.check_model(shuffled)
    assert_same_outputs(sdpa_decomposed(), shuffled)
