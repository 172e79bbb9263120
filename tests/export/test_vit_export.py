"""Image models: real exports of a tiny ViT (2 layers, hidden 32, 32x32 images, patch 8) with both exporters,
verified against torch; attention fused (no padding mask) and compared with the unfused graph within 1e-5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from support.perturb import perturb_layer

from edgedistill.config import ExportConfig
from edgedistill.export.bisect import bisect_onnx
from edgedistill.export.exporter import export_onnx
from edgedistill.export.verify import measure_onnx
from edgedistill.fuse import fuse_attention
from edgedistill.fuse.forms import plugin_problems
from edgedistill.fuse.verify import compare_graphs, verification_feeds
from edgedistill.models.onnx_file import onnx_io
from edgedistill.models.task_model import TaskModel
from edgedistill.tasks.inputs import IMAGE_INPUT

CFG = ExportConfig(dynamic={"batch": [1, 8], "sequence": [1, 8]}, atol=1e-5)
EXPORTS = {  # name: (exporter, opset, attention implementation, expected pattern)
    "dynamo20": ("dynamo", 20, "sdpa", "sdpa_decomposed_with_mask"),
    "eager_torchscript17": ("torchscript", 17, "eager", "eager_scaled_scores"),
}


def tiny_vit(hidden: int = 32, attention: str = "sdpa") -> TaskModel:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, intermediate_size=hidden * 2,
        image_size=32, patch_size=8, num_channels=3, num_labels=5, attn_implementation=attention,
    )
    torch.manual_seed(0)
    return TaskModel(ViTForImageClassification(config), "image-classification").eval()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TaskModel, Path]]:
    out = tmp_path_factory.mktemp("vit")
    made = {}
    for name, (exporter, opset, attention, _) in EXPORTS.items():
        model = tiny_vit(attention=attention)
        made[name] = (model, out / name / "model.onnx")
        export_onnx(model, None, CFG.model_copy(update={"exporter": exporter, "opset": opset}), made[name][1])
    return made


@pytest.mark.parametrize("name", list(EXPORTS))
def test_export_matches_torch_with_dynamic_batch(name, exports):
    model, path = exports[name]
    report = measure_onnx(model, None, path, CFG)
    assert report["passed"], report["worst"]
    assert report["shapes"] == ["1x3x32x32", "4x3x32x32"]
    inputs, outputs = onnx_io(path)
    assert inputs == [(IMAGE_INPUT, "float32", ["batch", 3, 32, 32])]
    assert outputs == [("logits", "float32", ["batch", 5])]


@pytest.mark.parametrize("name", list(EXPORTS))
def test_attention_fuses_ort_form_and_matches(name, exports, tmp_path):
    model, path = exports[name]
    proto = onnx.load(str(path))
    counts = [c.as_dict() for c in fuse_attention(proto, "ort")]
    assert sum(c["fused"] for c in counts) == 2 and not any(c["skipped"] for c in counts)
    assert {p for c in counts for p in c["patterns"]} == {EXPORTS[name][3]}
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("MultiHeadAttention") == 2 and "Softmax" not in ops
    assert all(len(n.input) == 3 for n in proto.graph.node if n.op_type == "MultiHeadAttention")  # no mask
    fused = tmp_path / "fused.onnx"
    onnx.save(proto, str(fused))
    report = compare_graphs(path, fused, atol=1e-5)
    assert report["passed"], report["worst"]
    assert {r["shape"] for r in report["results"]} == {"1x3x32x32", "3x3x32x32", "4x3x32x32", "8x3x32x32"}
    assert measure_onnx(model, None, fused, CFG)["passed"]  # and still torch's numbers


def test_trt_plugin_form_with_head_size_32(tmp_path):
    """Hidden 64 / 2 heads: head size 32 is in the plugin spec, so both blocks become plugin nodes."""
    model = tiny_vit(hidden=64)
    path = tmp_path / "vit64.onnx"
    export_onnx(model, None, CFG, path)
    assert measure_onnx(model, None, path, CFG)["passed"]
    proto = onnx.load(str(path))
    counts = [c.as_dict() for c in fuse_attention(proto, "trt-plugin")]
    assert sum(c["fused"] for c in counts) == 2
    nodes = [n for n in proto.graph.node if n.op_type == "FusedMultiHeadAttention"]
    assert len(nodes) == 2 and plugin_problems(proto) == []
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    assert attrs["num_heads"] == 2 and attrs["head_size"] == 32 and attrs["mask_type"] == 0
    assert attrs["scale"] == pytest.approx(32**-0.5) and len(nodes[0].input) == 3


def test_image_feeds_follow_the_graph_input(exports):
    _, path = exports["dynamo20"]
    feeds = verification_feeds(onnx.load(str(path)))
    assert [label for label, _ in feeds] == ["1x3x32x32", "3x3x32x32", "4x3x32x32", "8x3x32x32"]
    assert feeds[0][1][IMAGE_INPUT].dtype == np.float32


def test_bisect_names_perturbed_vit_layer(exports, tmp_path):
    model, path = exports["dynamo20"]
    bad = tmp_path / "bad.onnx"
    module = perturb_layer(path, bad, layer="backbone.vit.layers.1")
    images = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    report = bisect_onnx(model, None, bad, CFG, feeds={IMAGE_INPUT: images})
    assert report["layer"] == "backbone.vit.layers.1" and report["first"]["module"] == module
