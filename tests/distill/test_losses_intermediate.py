"""Losses on intermediate tensors against values computed by hand, and their setup-time errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from edgedistill.config import LossSpec, parse_config
from edgedistill.distill.capture import ModelInfo, capture, model_info
from edgedistill.distill.depth import select_layers
from edgedistill.distill.layer_map import layer_pairs, uniform_pairs
from edgedistill.distill.losses import LossSet, logits_kl
from edgedistill.distill.losses.attention import attention_scores, distribution_kl, score_mse
from edgedistill.distill.losses.hidden import masked_mse
from edgedistill.distill.losses.relation import relation_kl
from edgedistill.errors import ConfigError
from edgedistill.models.task_model import load_task_model

STUDENT = ModelInfo("student", True, layers=2, hidden=2, heads=1)
TEACHER = ModelInfo("teacher", True, layers=4, hidden=3, heads=1)


def test_logits_kl_mixes_hard_label_cross_entropy():
    s, t, temp, alpha = torch.tensor([[0.0, 0.0]]), torch.tensor([[2.0, 0.0]]), 2.0, 0.25
    p = torch.softmax(t / temp, -1)[0].tolist()
    kl = sum(pi * math.log(pi / 0.5) for pi in p) * temp**2
    expected = (1 - alpha) * kl + alpha * math.log(2)  # CE of uniform logits is ln 2
    spec = LossSpec(name="logits_kl", temperature=temp, hard_label_weight=alpha)
    assert logits_kl(s, t, spec, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)
    assert logits_kl(s, t, spec).item() == pytest.approx(kl, rel=1e-6)  # no labels: KD only


def test_uniform_mapping_is_tinybert_g_of_m():
    assert uniform_pairs(4, 12) == [(0, 2), (1, 5), (2, 8), (3, 11)]
    assert uniform_pairs(3, 6) == [(0, 1), (1, 3), (2, 5)]
    with pytest.raises(ConfigError, match=r"losses\[0\].layers: teacher layer 7 does not exist; the teacher has 4"):
        layer_pairs([(0, 7)], 2, 4, "distill.losses[0]")


def test_masked_mse_ignores_padding():
    s = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert masked_mse(s, torch.zeros_like(s), torch.tensor([[1, 0]])).item() == pytest.approx(2.5)  # (1+4)/2


def test_hidden_mse_learns_a_projection_when_widths_differ():
    spec = LossSpec(name="hidden_mse", layers=[(1, 3)])
    losses = LossSet([spec], STUDENT, TEACHER)
    proj = losses.parts[0].projections[0]
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        proj.bias.zero_()
    s = {"output": torch.zeros(1, 2), "hidden.1": torch.tensor([[[1.0, 2.0]]])}  # projected: [1, 2, 3]
    t = {"output": torch.zeros(1, 3), "hidden.3": torch.tensor([[[1.0, 0.0, 0.0]]])}
    got = losses(s, t, {"attention_mask": torch.ones(1, 1)})
    assert got.item() == pytest.approx((0 + 4 + 9) / 3)
    assert len(list(losses.parameters())) == 2  # the projection trains with the student


def test_hidden_mse_without_projection_rejects_width_mismatch():
    with pytest.raises(ConfigError, match="hidden widths differ .student 2, teacher 3. and projection is off"):
        LossSet([LossSpec(name="hidden_mse", projection=False)], STUDENT, TEACHER)


def test_attention_scores_and_mse_by_hand():
    q, k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), torch.tensor([[[1.0, 1.0], [2.0, 0.0]]])
    scores = attention_scores(q, k, heads=1)  # q kᵀ / √2 = [[1, 2], [1, 0]] / √2
    torch.testing.assert_close(scores, torch.tensor([[[[1.0, 2.0], [1.0, 0.0]]]]) / math.sqrt(2))
    zero = torch.zeros_like(scores)
    assert score_mse(scores, zero, torch.tensor([[1, 1]])).item() == pytest.approx((1 + 4 + 1 + 0) / 2 / 4)
    assert score_mse(scores, zero, torch.tensor([[1, 0]])).item() == pytest.approx(0.5)  # only (0, 0)


def test_attention_kl_by_hand_excludes_padding():
    teacher = torch.tensor([[[[math.log(3), 0.0, 9.0]] * 3]])  # (1, 1, 3, 3); key 2 is padding
    student = torch.zeros_like(teacher)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    got = distribution_kl(student, teacher, torch.tensor([[1, 1, 0]]))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_attention_losses_need_equal_heads():
    with pytest.raises(ConfigError, match="the student has 1 and the teacher 2; use minilm_relation"):
        LossSet([LossSpec(name="attention_kl")], STUDENT, ModelInfo("t", True, layers=4, hidden=4, heads=2))


def test_minilm_relation_by_hand_with_heads_independent_of_width():
    a = math.sqrt(math.sqrt(2) * math.log(3))  # teacher relation row 0: softmax([ln 3, 0]) = [.75, .25]
    teacher = torch.tensor([[[a, 0.0], [0.0, 0.0]]])
    student = torch.zeros(1, 2, 2)
    kl0 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    got = relation_kl(student, teacher, torch.ones(1, 2), heads=1)
    assert got.item() == pytest.approx(kl0 / 2, rel=1e-6)  # row 1 is uniform in both: KL 0
    # 2 relation heads over widths 6 (student) and 4 (teacher): each head's relation is computed separately
    assert relation_kl(torch.zeros(1, 2, 6), torch.zeros(1, 2, 4), torch.ones(1, 2), heads=2).item() == 0.0


def test_minilm_relation_heads_must_divide_widths():
    with pytest.raises(ConfigError, match="relation_heads: 2 does not divide the teacher's width 3"):
        LossSet([LossSpec(name="minilm_relation", relation_heads=2)], ModelInfo("s", True, 2, 4, 2), TEACHER)


def test_fitnets_regressor_by_hand():
    student_net = nn.Sequential(nn.Conv2d(1, 1, 1))
    teacher_net = nn.Sequential(nn.Conv2d(1, 3, 1))
    spec = LossSpec(name="fitnets", student_module="0", teacher_module="0")
    losses = LossSet([spec], model_info(student_net, "s"), model_info(teacher_net, "t"))
    reg = losses.parts[0].regressor
    assert (reg.in_channels, reg.out_channels) == (1, 3)
    with torch.no_grad():
        reg.weight.fill_(2.0)
        reg.bias.zero_()
    s = {"output": torch.zeros(1), "module:0": torch.tensor([[[[1.0, 2.0]]]])}  # (1, 1, 1, 2) -> 2, 4 per channel
    t = {"output": torch.zeros(1), "module:0": torch.zeros(1, 3, 1, 2)}
    assert losses(s, t, {}).item() == pytest.approx((4 + 16) / 2)


@pytest.fixture()
def bert(tiny_bert):
    return load_task_model(tiny_bert, "sentence-embedding")


def test_hooks_capture_intermediates_and_an_identical_student_scores_zero(bert):
    teacher, tok = bert
    student = select_layers(teacher, [0, 1])
    specs = [LossSpec(name=n) for n in ("hidden_mse", "attention_mse", "attention_kl", "minilm_relation")]
    losses = LossSet(specs, model_info(student, "s"), model_info(teacher, "t"))
    assert losses.teacher_keys() == ["hidden.0", "hidden.1", "key.0", "key.1", "query.0", "query.1",
                                     "value.1"]
    enc = tok(["a man plays the guitar", "the dog"], padding=True, return_tensors="pt")
    with capture(student, losses.student_keys()) as s, capture(teacher, losses.teacher_keys()) as t:
        s["output"], t["output"] = student(**enc), teacher(**enc)
    assert s["hidden.1"].shape == (2, enc["input_ids"].shape[1], 32)
    assert losses(s, t, dict(enc)).item() == pytest.approx(0.0, abs=1e-6)
    assert not teacher.layers[0]._forward_hooks  # hooks removed afterwards


def test_hooks_reject_a_missing_module(bert):
    with pytest.raises(ConfigError, match="module 'encoder.nope' not found"), capture(bert[0], ["module:encoder.nope"]):
        pass


def test_unknown_loss_and_black_box_teacher_rejected_at_load(tmp_path):
    base = {"name": "x", "student": {"from_teacher": {"layers": [0]}}, "data": {"train": {"source": "python-docs"}}}
    with pytest.raises(ConfigError, match="unknown loss 'hiden_mse'; did you mean 'hidden_mse'"):
        parse_config({**base, "teacher": {"path": str(tmp_path)}, "distill": {"losses": [{"name": "hiden_mse"}]}})
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"losses\[1\]: loss 'attention_kl' needs the teacher's hidden states"):
        parse_config({**base, "teacher": {"source": "onnx", "path": str(onnx)},
                      "distill": {"losses": [{"name": "embedding_mse"}, {"name": "attention_kl"}]}})
    with pytest.raises(ConfigError, match="option 'temperature' does not apply to loss 'embedding_mse'"):
        parse_config({**base, "teacher": {"path": str(tmp_path)},
                      "distill": {"losses": [{"name": "embedding_mse", "temperature": 2}]}})
