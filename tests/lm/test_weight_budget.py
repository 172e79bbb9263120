"""The weight-only accuracy budget: groups raised to INT8 (or float) in the order of their measured sensitivity until
the Task's metric holds (top-1 agreement with the teacher, or KL added), scored on the teacher's answers; the record
against an independent scoring of the published model, and the cases it cannot meet or cannot run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from support.tiny_lm import make_tiny_lm

from edgedistill import api
from edgedistill.artifacts import Artifact
from edgedistill.config import ExportConfig, WeightOnly, WeightOnlyBudget
from edgedistill.errors import InputError
from edgedistill.lm.decoders import OrtDecoder
from edgedistill.lm.metrics import teacher_forcing
from edgedistill.lm.onnx_model import DecoderAsCausalLM
from edgedistill.lm.records import SequenceTargets
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.groups import node_groups
from edgedistill.quantize.weight_only import fold_transposed_weights

TOP_K = 8


@pytest.fixture(scope="module")
def lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "lm", hidden=64, intermediate=128, weight_scale=3.0)


@pytest.fixture(scope="module")
def exported(lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return api.export(lm, tmp_path_factory.mktemp("run"), ExportConfig())


@pytest.fixture(scope="module")
def targets(lm: Path) -> list[SequenceTargets]:
    """The float torch model as the teacher: its top-k over 12 random 24-token sequences, 16 of them answers."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(lm).eval()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(12):
        ids = rng.integers(3, model.config.vocab_size, 24)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.from_numpy(ids)[None]).logits[0, 7:-1].float(), -1)
        top = logp.topk(TOP_K, -1)
        out.append(SequenceTargets(ids, 8, top.indices.numpy().astype(np.int32), top.values.numpy(),
                                   np.ones(16, dtype=bool)))
    return out


def budgeted(exported: Artifact, tmp: Path, targets: list[SequenceTargets], **budget: object) -> Artifact:
    step = WeightOnly(block_size=32, budget=WeightOnlyBudget.model_validate(budget))
    (artifact,) = api.quantize(exported, tmp, [step], data=QuantizeData([], targets=targets))
    return artifact


def agreement(path: Path, targets: list[SequenceTargets]) -> dict[str, float]:
    return teacher_forcing(DecoderAsCausalLM(OrtDecoder(path), set()), targets)


def bits_by_layer(path: Path, float_path: Path) -> dict[str, set[int]]:
    """The bits of each layer's MatMulNBits nodes, by the float model's groups (the quantizer names a node after
    its MatMul, plus _Q4 / _Q8)."""
    proto = onnx.load(str(float_path))
    fold_transposed_weights(proto.graph)
    label = {n: g.label for g in node_groups(proto, ["MatMul"], "layer") for n in g.nodes}
    found: dict[str, set[int]] = {}
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "MatMulNBits":
            bits = next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "bits")
            found.setdefault(label[node.name.rsplit("_Q", 1)[0]], set()).add(bits)
    return found


def test_all_int4_meeting_the_budget_raises_nothing(exported: Artifact, tmp_path: Path,
                                                    targets: list[SequenceTargets]) -> None:
    artifact = budgeted(exported, tmp_path, targets, metric="top1_kept", min=0.2)
    record = artifact.meta["budget"]
    assert record["met"] and record["raised"] == [] and len(record["steps"]) == 1
    assert artifact.name.endswith("int4-rtn-b32-budget") and "sensitivity" not in artifact.meta
    assert all(bits == {4} for bits in bits_by_layer(artifact.path, exported.path).values())


def test_tight_budget_raises_the_most_sensitive_layers_to_int8(exported: Artifact, tmp_path: Path,
                                                              targets: list[SequenceTargets]) -> None:
    float_top1 = agreement(exported.path, targets)["top1_agreement"]
    int4 = api.quantize(exported, tmp_path / "plain", [WeightOnly(block_size=32)])[0]
    int4_top1 = agreement(int4.path, targets)["top1_agreement"]
    assert int4_top1 < 0.8 * float_top1  # the budget has something to do
    artifact = budgeted(exported, tmp_path / "b", targets, metric="top1_kept", min=0.8)
    record = artifact.meta["budget"]
    published = agreement(artifact.path, targets)
    assert record["met"] and published["top1_agreement"] >= 0.8 * float_top1
    assert record["quality"]["top1_agreement"] == pytest.approx(published["top1_agreement"], abs=1e-6)
    assert record["float_quality"]["top1_agreement"] == pytest.approx(float_top1, abs=1e-6)
    assert record["steps"][0]["top1_agreement"] == pytest.approx(int4_top1, abs=1e-6)
    ranking = artifact.meta["sensitivity"]
    assert record["raised"] == ranking[: len(record["raised"])] and record["raised"]
    bits = bits_by_layer(artifact.path, exported.path)
    assert all(bits[g] == {8} for g in record["raised"]) and any(b == {4} for b in bits.values())
    rows = json.loads((artifact.path.parent / "sensitivity.json").read_text())
    assert [r["label"] for r in rows] == ranking and len(rows) == 4 + 1  # four layers and the tied head
    assert [r["drop"] for r in rows] == sorted((r["drop"] for r in rows), reverse=True)
    sizes = [s["weights_mb"] for s in record["steps"]]
    assert sizes == sorted(sizes)  # each INT8 group reads more bytes per token


def test_kl_budget_that_no_mix_meets_keeps_the_best_and_says_so(exported: Artifact, tmp_path: Path,
                                                                targets: list[SequenceTargets],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    artifact = budgeted(exported, tmp_path, targets, metric="kl_rise", max=0.0, group_by="kind")
    record = artifact.meta["budget"]
    assert not record["met"] and "cannot be met" in caplog.text
    assert len(record["steps"]) == record["groups"] + 1  # every kind raised, one at a time
    assert artifact.meta["quantized"]["MatMulNBits"] > 0  # the kept mix still quantizes something
    assert any("mlp" in label and "*" in label for label in artifact.meta["sensitivity"])


def test_budget_without_the_teachers_answers_is_an_input_error(exported: Artifact, tmp_path: Path) -> None:
    step = WeightOnly(block_size=32, budget=WeightOnlyBudget(metric="top1_kept", min=0.98))
    with pytest.raises(InputError, match="scores on the teacher's answers"):
        api.quantize(exported, tmp_path, [step])
    assert not list(tmp_path.glob("quantize/*/model.onnx"))


def test_budget_bound_must_match_its_metric() -> None:
    with pytest.raises(ValueError, match="needs 'max'"):
        WeightOnlyBudget(metric="kl_rise", min=0.9)
