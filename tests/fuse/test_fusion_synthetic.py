"""Attention fusion on tiny synthetic graphs: each pattern fuses exactly, each near miss stays unfused."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from support.fusion_graphs import (
    assert_same_outputs,
    batches,
    eager_scaled_scores,
    fused_copy,
    onnx_attention_op,
    ops,
    run,
    sdpa_decomposed,
)

from edgedistill.errors import InputError
from edgedistill.fuse.forms import plugin_problems
from edgedistill.plugins import fused_attention_spec


@pytest.mark.parametrize(
    "build,pattern",
    [
        (lambda: sdpa_decomposed(), "sdpa_decomposed_with_mask"),
        (lambda: sdpa_decomposed(mask=None), "sdpa_decomposed"),
        (lambda: eager_scaled_scores(), "eager_scaled_scores_with_mask"),
    ],
    ids=["sdpa_with_mask", "sdpa_unmasked", "eager"],
)
def test_decomposed_attention_becomes_multihead_attention(build, pattern):
    model = build()
    fused, counts = fused_copy(model)
    assert counts["attention"].found == 1 and counts["attention"].fused == 1
    assert counts["attention"].patterns == {pattern: 1}
    assert ops(fused).count("MultiHeadAttention") == 1
    assert "Softmax" not in ops(fused)
    assert_same_outputs(model, fused)


def test_head_count_and_scale_are_exact():
    fused, _ = fused_copy(eager_scaled_scores())
    node = next(n for n in fused.graph.node if n.op_type == "MultiHeadAttention")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert node.domain == "com.microsoft"
    assert attrs["num_heads"] == 2
    assert attrs["scale"] == pytest.approx(1 / math.sqrt(8), rel=1e-7)
    assert attrs["mask_filter_value"] == -10000.0  # carried from the export's mask
    mask_input = node.input[4]
    cast = next(n for n in fused.graph.node if mask_input in n.output)
    assert cast.op_type == "Cast" and list(cast.input) == ["attention_mask"]


def test_padding_changes_fused_outputs():
    """The mask really reaches the fused op: padding must change the padded rows' outputs."""
    fused, _ = fused_copy(sdpa_decomposed())
    _, feeds = batches()[1]
    unpadded = dict(feeds, attention_mask=np.ones_like(feeds["attention_mask"]))
    assert np.abs(run(fused, feeds)[1:] - run(fused, unpadded)[1:]).max() > 1e-3


def test_causal_plus_padding_mask_sets_unidirectional():
    model = sdpa_decomposed(causal=True)
    fused, counts = fused_copy(model)
    assert counts["attention"].fused == 1
    node = next(n for n in fused.graph.node if n.op_type == "MultiHeadAttention")
    assert {a.name: a.i for a in node.attribute if a.name == "unidirectional"} == {"unidirectional": 1}
    assert_same_outputs(model, fused)


@pytest.mark.parametrize(
    "model,reason",
    [
        (sdpa_decomposed(mask="queries"), "query axis"),
        (sdpa_decomposed(mask="bias"), "finite bias"),
        (sdpa_decomposed(extra_op="Mul"), "expected only MatMul"),
        (sdpa_decomposed(extra_op="Relu"), "expected only MatMul"),
    ],
    ids=["mask_on_query_axis", "finite_bias", "scaled_probs", "relu_between"],
)
def test_near_misses_stay_unfused_with_a_reason(model, reason):
    fused, counts = fused_copy(model)
    assert counts["attention"].found == 1 and counts["attention"].fused == 0
    assert reason in counts["attention"].skipped[0].reason
    assert "MultiHeadAttention" not in ops(fused)
    assert ops(fused) == ops(model)


def test_opset23_attention_op_to_multihead_attention():
    model = onnx_attention_op()
    fused, counts = fused_copy(model)
    assert counts["attention_op"].patterns == {"onnx_attention_op_with_mask": 1}
    node = next(n for n in fused.graph.node if n.op_type == "MultiHeadAttention")
    assert {a.name: a.f for a in node.attribute if a.name == "scale"}["scale"] == pytest.approx(0.3)
    assert_same_outputs(model, fused)


def test_onnx_form_gives_standard_attention():
    model = sdpa_decomposed(opset=23)
    fused, counts = fused_copy(model, "onnx")
    assert counts["attention"].fused == 1
    node = next(n for n in fused.graph.node if n.op_type == "Attention")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert node.domain == "" and attrs["q_num_heads"] == attrs["kv_num_heads"] == 2
    assert_same_outputs(model, fused)


def test_onnx_form_refuses_old_opset():
    with pytest.raises(InputError, match="opset 23"):
        fused_copy(sdpa_decomposed(opset=20), "onnx")


def test_trt_plugin_node_matches_spec():
    spec = fused_attention_spec()
    fused, counts = fused_copy(sdpa_decomposed(hidden=64, heads=2), "trt-plugin")  # head size 32
    assert counts["attention"].fused == 1
    node = next(n for n in fused.graph.node if n.op_type == spec["name"])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["plugin_version"] == spec["version"].encode()
    assert attrs["plugin_namespace"] == spec["namespace"].encode()
    assert set(attrs) == {f["name"] for f in spec["fields"]} | {"plugin_version", "plugin_namespace"}
    assert (attrs["num_heads"], attrs["head_size"], attrs["mask_type"], attrs["causal"]) == (2, 32, 1, 0)
    assert attrs["scale"] == pytest.approx(1 / math.sqrt(32), rel=1e-6)
    assert len(node.input) == 4 and node.input[0].startswith("add_")  # (B, S, N*H) projections
    assert plugin_problems(fused) == []
    onnx.checker.check_model(fused)


def test_plugin_check_catches_spec_disagreement():
    fused, _ = fused_copy(sdpa_decomposed(hidden=64, heads=2), "trt-plugin")
    spec = dict(fused_attention_spec(), version="2")
    assert any("plugin_version" in p for p in plugin_problems(fused, spec))


def test_trt_plugin_skips_unsupported_head_size():
    fused, counts = fused_copy(sdpa_decomposed(), "trt-plugin")  # head size 8
    assert counts["attention"].fused == 0
    assert "head size 8" in counts["attention"].skipped[0].reason
