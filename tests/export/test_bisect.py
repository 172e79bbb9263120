"""Bisect: a weight of layer 1 is perturbed in the ONNX file, and the bisect names that layer and module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from support.perturb import perturb_layer

from edgedistill.artifacts import Artifact
from edgedistill.config import ExportConfig
from edgedistill.errors import VerificationError
from edgedistill.export import stage as export
from edgedistill.export.bisect import bisect_onnx, describe, layer_of, scope_chain
from edgedistill.models.task_model import load_task_model

CFG = ExportConfig(dynamic={"batch": [1, 4], "sequence": [1, 64]})
LAYER = "backbone.encoder.layer.1"


@pytest.fixture(scope="module")
def torch_model(tiny_bert: Path):
    return load_task_model(tiny_bert, "sentence-embedding")


@pytest.fixture(scope="module", params=["dynamo", "torchscript"])
def exported(request, torch_model, tmp_path_factory) -> Path:
    model, tokenizer = torch_model
    path = tmp_path_factory.mktemp(request.param) / "model.onnx"
    export.export_onnx(model, tokenizer, CFG.model_copy(update={"exporter": request.param}), path)
    return path


def test_clean_export_has_no_disagreement(exported, torch_model):
    model, tokenizer = torch_model
    report = bisect_onnx(model, tokenizer, exported, CFG)
    assert report["first"] is None and not report["unmatched"]
    modules = {e["module"] for e in report["compared"]}
    assert {f"{LAYER}", "backbone.encoder.layer.0", "backbone.embeddings", "<model>"} <= modules
    assert "all" in describe(report)


def test_perturbed_layer_is_named(exported, torch_model, tmp_path):
    model, tokenizer = torch_model
    bad = tmp_path / "bad.onnx"
    module = perturb_layer(exported, bad, LAYER)
    assert not export.measure_onnx(model, tokenizer, bad, CFG)["passed"]  # verification sees it
    report = bisect_onnx(model, tokenizer, bad, CFG)
    first = report["first"]
    assert report["layer"] == LAYER and first["module"] == module  # the Linear whose weight changed
    assert first["max_abs"] > 0.1 and len(first["shape"]) == 3
    assert LAYER in report["enclosing"]
    before = [e for e in report["compared"] if e["position"] < first["position"]]
    assert before and not any(e["disagrees"] for e in before)  # everything upstream still agrees
    assert f"in {LAYER} at module '{module}'" in describe(report)


def test_given_feeds_are_used(exported, torch_model, tmp_path):
    model, tokenizer = torch_model
    bad = tmp_path / "bad.onnx"
    perturb_layer(exported, bad, LAYER)
    ids = np.random.default_rng(0).integers(5, 60, size=(2, 9))
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    report = bisect_onnx(model, tokenizer, bad, CFG, feeds=feeds)
    assert report["feeds"] == "given" and report["first"]["shape"][:2] == [2, 9]


def test_stage_failure_names_the_layer(tiny_bert, tmp_path, monkeypatch):
    real = export.export_onnx

    def broken_export(model, tokenizer, cfg, out_file, source=None):
        real(model, tokenizer, cfg, out_file, source)
        perturb_layer(out_file, out_file, LAYER)

    monkeypatch.setattr(export, "export_onnx", broken_export)
    with pytest.raises(VerificationError, match=rf"bisect: first disagreement in {LAYER} at module"):
        cfg = CFG.model_copy(update={"exporter": "torchscript"})  # the faster exporter; both are bisected above
        export.run(cfg, Artifact("tiny", "hf", tiny_bert), tmp_path, bisect=True)
    assert (tmp_path / "bisect.json").is_file() and not (tmp_path / "model.onnx").exists()


def test_scope_chain_from_names_and_metadata():
    node = onnx.helper.make_node("MatMul", ["a", "b"], ["c"], name="/backbone/encoder/layer.0/attention/MatMul")
    assert scope_chain(node) == ["", "backbone", "backbone.encoder", "backbone.encoder.layer.0",
                                 "backbone.encoder.layer.0.attention"]
    dyn = onnx.helper.make_node("Add", ["a", "b"], ["c"], name="node_add_3")
    entry = dyn.metadata_props.add()
    entry.key, entry.value = "pkg.torch.onnx.name_scopes", "['', 'backbone', 'backbone.pooler', 'add_3']"
    assert scope_chain(dyn) == ["", "backbone", "backbone.pooler"]
    assert scope_chain(onnx.helper.make_node("Add", ["a", "b"], ["c"], name="fused")) is None
    assert layer_of("vit.encoder.layer.3.attention.query") == "vit.encoder.layer.3" and layer_of("pooler") is None
