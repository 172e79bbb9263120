"""Attention fusion on real exports of a tiny DeBERTa-v3-style model (relative attention, c2p + p2c, shared keys,
position buckets): the disentangled terms and the pairwise mask become MultiHeadAttention's attention_bias.

Fused graphs are compared with the unfused ones in ONNX Runtime (1e-5, padded and unpadded batches), row by row at
every attention output (padded query rows included), and with torch through the export's own verification.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from support.tiny_models import make_tiny_text_model

from edgedistill.artifacts import Artifact
from edgedistill.config import ExportConfig, FuseConfig
from edgedistill.export.exporter import export_onnx
from edgedistill.export.verify import measure_onnx
from edgedistill.fuse import fuse_attention, pack_qkv
from edgedistill.fuse.stage import run as fuse_stage
from edgedistill.fuse.unpadded_fast_path import add_unpadded_fast_path
from edgedistill.fuse.verify import compare_graphs, verification_feeds
from edgedistill.models.task_model import load_task_model

PATTERN = "deberta_disentangled_bias_with_mask"
EXPORTS = {"dynamo20": ("dynamo", 20), "torchscript17": ("torchscript", 17), "dynamo23": ("dynamo", 23)}
HEAD_SIZE, SCALE_FACTOR = 16, 3  # hidden 32 over 2 heads; 1 + len(["p2c", "c2p"])


def export_config(opset: int = 20, exporter: str = "dynamo") -> ExportConfig:
    return ExportConfig(opset=opset, exporter=exporter, atol=1e-5, dynamic={"sequence": [1, 128]})  # 128 positions


@pytest.fixture(scope="module")
def deberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_text_model("deberta-v2", tmp_path_factory.mktemp("deberta") / "model")


@pytest.fixture(scope="module")
def torch_model(deberta: Path):
    return load_task_model(deberta, "sentence-embedding")


@pytest.fixture(scope="module")
def exports(deberta: Path, torch_model, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("deberta_exports")
    model, tokenizer = torch_model
    files = {}
    for name, (exporter, opset) in EXPORTS.items():
        files[name] = out / name / "model.onnx"
        export_onnx(model, tokenizer, export_config(opset, exporter), files[name])
    return files


def fuse_to(src: Path, form: str, dst: Path) -> dict[str, dict]:
    model = onnx.load(str(src))
    counts = {c.fusion: c.as_dict() for c in fuse_attention(model, form)}
    onnx.save(model, str(dst))
    return counts


def attention_nodes(path: Path, op_type: str = "MultiHeadAttention") -> list[onnx.NodeProto]:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == op_type]


def every_row(unfused: Path, fused: Path, names: list[str]) -> tuple[float, float]:
    """Max abs difference of the tensors ``names`` (the attention outputs) over valid and over padded query rows."""
    def session(path: Path, optimise: bool) -> ort.InferenceSession:
        model = onnx.load(str(path))
        model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
        options = ort.SessionOptions()
        if not optimise:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    want, got = session(unfused, False), session(fused, True)
    valid = padded = 0.0
    for _, feeds in verification_feeds(onnx.load(str(unfused))):
        pad = feeds["attention_mask"] == 0
        for a, b in zip(want.run(names, feeds), got.run(names, feeds), strict=True):
            diff = np.abs(a - b)
            valid = max(valid, float(diff[~pad].max()))
            padded = max(padded, float(diff[pad].max())) if pad.any() else padded
    return valid, padded


@pytest.mark.parametrize("name", ["dynamo20", "torchscript17"])
def test_every_block_fuses_with_the_bias_and_matches_unfused_and_torch(name, exports, torch_model, tmp_path):
    fused = tmp_path / "fused.onnx"
    counts = fuse_to(exports[name], "ort", fused)
    assert counts["attention"]["found"] == 2 and counts["attention"]["fused"] == 2
    assert counts["attention"]["patterns"] == {PATTERN: 2} and not counts["attention"]["skipped"]
    ops = [n.op_type for n in onnx.load(str(fused)).graph.node]
    assert ops.count("MultiHeadAttention") == 2 and "Softmax" not in ops
    for node in attention_nodes(fused):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["num_heads"] == 2 and set(attrs) == {"num_heads", "scale"}
        assert attrs["scale"] == pytest.approx(1 / math.sqrt(HEAD_SIZE * SCALE_FACTOR), rel=1e-6)
        assert len(node.input) == 6 and node.input[3] == node.input[4] == "" and node.input[5]  # attention_bias

    report = compare_graphs(exports[name], fused, atol=1e-5)
    assert report["passed"], report["worst"]
    assert {"1x128", "8x128 padded", "3x17 padded"} <= {r["shape"] for r in report["results"]}

    # The mask travels inside the bias exactly as the export applied it, so even padded query rows (all keys
    # masked: a uniform average in torch) match, not only the rows the pooling keeps.
    valid, padded = every_row(exports[name], fused, [n.output[0] for n in attention_nodes(fused)])
    assert valid <= 1e-5 and padded <= 1e-5

    model, tokenizer = torch_model
    against_torch = measure_onnx(model, tokenizer, fused, export_config())
    assert against_torch["passed"], against_torch["worst"]
    assert any("x" in r["shape"] and int(r["shape"].split("x")[0]) > 1 for r in against_torch["results"])


def test_deberta_has_no_sdpa_path(torch_model):
    """transformers 5 gives DeBERTa-v2 its own (eager) attention only, so the exports above cover it; should it gain
    an SDPA path, add that export here."""
    model, _ = torch_model
    assert not type(model.backbone)._supports_sdpa


def test_onnx_form_takes_the_bias_as_a_float_attn_mask(exports, tmp_path):
    fused = tmp_path / "fused.onnx"
    counts = fuse_to(exports["dynamo23"], "onnx", fused)
    assert counts["attention"]["patterns"] == {PATTERN: 2}
    nodes = attention_nodes(fused, "Attention")
    assert len(nodes) == 2 and all(len(n.input) == 4 and n.domain == "" for n in nodes)
    assert compare_graphs(exports["dynamo23"], fused, atol=1e-5)["passed"]


def test_trt_plugin_form_skips_with_the_reason(exports, tmp_path):
    counts = fuse_to(exports["dynamo20"], "trt-plugin", tmp_path / "fused.onnx")
    skipped = counts["attention"]["skipped"]
    assert counts["attention"]["fused"] == 0 and len(skipped) == 2
    assert all(s["pattern"] == PATTERN and "needs an additive attention bias input; form trt-plugin has none"
               in s["reason"] for s in skipped)


def test_a_mask_fill_too_weak_for_the_bias_stays_unfused(exports, tmp_path):
    """A fill of -1e4 would not absorb the scores once added, so moving it into the bias would change padded rows."""
    model = onnx.load(str(exports["dynamo20"]))
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    where = next(n for n in model.graph.node if n.output[0] == softmax.input[0])
    fill = next(i for i in model.graph.initializer if i.name == where.input[1])
    fill.CopyFrom(onnx.numpy_helper.from_array(np.array(-1e4, dtype=np.float32), fill.name))
    counts = fuse_attention(model, "ort")[0]
    assert counts.fused == 0 and all("not low enough" in s.reason for s in counts.skipped)


def test_packing_and_the_unpadded_fast_path_leave_the_bias_node_with_a_reason(exports, tmp_path):
    fused = tmp_path / "fused.onnx"
    fuse_to(exports["dynamo20"], "ort", fused)
    model = onnx.load(str(fused))
    packing = pack_qkv(model).as_dict()
    assert packing["found"] == 2 and packing["fused"] == 0
    assert all("attention_bias" in s["reason"] for s in packing["skipped"])
    fast = add_unpadded_fast_path(model, 0)["unpadded_fast_path_mha"]
    assert fast["found"] == 2 and fast["fused"] == 0
    assert all("attention bias" in s["reason"] for s in fast["skipped"])


@pytest.mark.parametrize("name", ["dynamo20", "torchscript17"])
def test_stage_with_the_default_config_fuses_and_verifies(name, exports, tmp_path):
    source = Artifact("deberta-onnx", "onnx", exports[name], "sentence-embedding")
    fused = fuse_stage(FuseConfig(), source, tmp_path / "fuse")
    assert fused.meta["attention"]["fused"] == 2 and fused.meta["attention"]["patterns"] == {PATTERN: 2}
    assert fused.meta["verification"]["passed"] and fused.meta["verification"]["worst"]["max_abs"] <= 1e-5
    assert fused.meta["qkv_packed"] == 0 and fused.meta["unpadded_fast_path"] == 0
    assert len(attention_nodes(fused.path)) == 2
