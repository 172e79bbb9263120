"""The unpadded fast path (ort form): If(no padding, big enough) → MultiHeadAttention without mask, else the node."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from support.fusion_graphs import assert_same_outputs, batches, fused_copy, ops, sdpa_decomposed

from edgedistill.fuse import pack_qkv
from edgedistill.fuse.graph import Graph, sort_topologically
from edgedistill.fuse.unpadded_fast_path import add_unpadded_fast_path, remove_unpadded_fast_path


def fast_path_copy(model: onnx.ModelProto, packed: bool = True, min_scores: int = 0) -> tuple[onnx.ModelProto, dict]:
    fused, _ = fused_copy(model, "ort")
    if packed:
        pack_qkv(fused)
    return fused, add_unpadded_fast_path(fused, min_scores)


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
    then, other = branches(result)["then_branch"], branches(result)["else_branch"]
    flash = next(n for n in then.node if n.op_type == "MultiHeadAttention")
    assert [n.op_type for n in then.node] == (["MatMul", "Split"] if packed else []) + ["MultiHeadAttention"]
    assert len(flash.input) == (4 if packed else 3)  # no mask: ORT's flash path
    assert {a.name for a in flash.attribute} == {"num_heads", "scale"}
    (original,) = other.node  # padded (or small) batches run the node exactly as it was
    assert original.op_type == ("Attention" if packed else "MultiHeadAttention") and original.input[-1]
    assert_same_outputs(model, result)  # unmasked and padding-heavy batches, against the unfused graph


def flags(min_scores: int) -> dict[str, bool]:
    result, _ = fast_path_copy(sdpa_decomposed(), min_scores=min_scores)
    flag = next(n for n in result.graph.node if n.op_type == "If").input[0]
    result.graph.output.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
    session = ort.InferenceSession(result.SerializeToString(), providers=["CPUExecutionProvider"])
    return {label: bool(session.run([flag], feeds)[0]) for label, feeds in batches()}


def test_the_flash_flag_needs_no_padding_and_enough_scores():
    assert flags(0) == {"unmasked": True, "padded": False, "padded-long": False}
    assert flags(2 * 7 * 7)["unmasked"]  # the unmasked batch is (2, 7): B·S² = 98
    assert not flags(2 * 7 * 7 + 1)["unmasked"]


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
    before = len(result.graph.node), len(result.graph.initializer)
    assert Graph(result).prune() == 0
    assert (len(result.graph.node), len(result.graph.initializer)) == before  # the packed weight lives on
    weight = next(n for n in branches(result)["else_branch"].node).input[1]
    assert [n.op_type for n in Graph(result).consumers(weight)] == ["If"]


def test_removing_the_fast_path_gives_back_the_plain_graph():
    packed, _ = fused_copy(sdpa_decomposed(), "ort")
    pack_qkv(packed)
    result, _ = fast_path_copy(sdpa_decomposed())
    assert remove_unpadded_fast_path(result) == 1
    assert ops(result) == ops(packed)
    assert sorted(i.name for i in result.graph.initializer) == sorted(i.name for i in packed.graph.initializer)
    assert_same_outputs(sdpa_decomposed(), result)


def test_int8_quantization_quantizes_both_branches_once(tmp_path):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = sdpa_decomposed()
    result, _ = fast_path_copy(model)
    onnx.save(result, str(tmp_path / "fp32.onnx"))
    quantize_dynamic(str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx"), weight_type=QuantType.QInt8,
                     extra_options={"EnableSubgraph": True})
    int8 = onnx.load(str(tmp_path / "int8.onnx"))
    then, other = branches(int8)["then_branch"], branches(int8)["else_branch"]
    assert "MatMulInteger" in [n.op_type for n in then.node] and [n.op_type for n in other.node] == ["QAttention"]
    int8_weights = [i for i in int8.graph.initializer if i.data_type == TensorProto.INT8 and len(i.dims) == 2]
    assert len(int8_weights) == 2  # the packed QKV weight (shared by both branches) and the output projection
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


def test_stage_on_an_external_data_export_verifies_both_branches(tiny_bert, tmp_path):
    """A source with external data (as exports past 2 GB are) fuses, verifies the flash twin and publishes."""
    from edgedistill.artifacts import Artifact
    from edgedistill.config import ExportConfig, FuseConfig
    from edgedistill.export.exporter import export_onnx
    from edgedistill.fuse.stage import run as fuse_stage
    from edgedistill.models.task_model import load_task_model

    model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
    export_onnx(model, tokenizer, ExportConfig(opset=20), tmp_path / "export" / "model.onnx")
    external = tmp_path / "external" / "model.onnx"
    external.parent.mkdir()
    proto = onnx.load(str(tmp_path / "export" / "model.onnx"))
    onnx.save(proto, str(external), save_as_external_data=True, location="model.onnx.data")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if (tmp_path / "export" / name).is_file():
            (external.parent / name).write_bytes((tmp_path / "export" / name).read_bytes())
    source = Artifact("student-onnx", "onnx", external, "sentence-embedding")
    fused = fuse_stage(FuseConfig(), source, tmp_path / "fuse")
    assert fused.meta["unpadded_fast_path"] == 2 and fused.meta["verification"]["passed"]
    report = json.loads((tmp_path / "fuse" / "fusion.json").read_text())
    assert any(r["shape"].endswith("(flash branch)") for r in report["verification"]["results"])
    assert sorted(p.name for p in (tmp_path / "fuse").glob("*.onnx*")) == ["model.onnx", "model.onnx.data"]
    assert not list((tmp_path / "fuse").glob("flash_*"))  # the twin stays in staging
