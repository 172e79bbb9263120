"""Hidden-size reduction: the cut model equals the full model with its residual stream masked to the kept units."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from edgedistill.distill.hidden_width import prune_hidden, residual_weight_scores
from edgedistill.distill.width import prune_width
from edgedistill.errors import ConfigError
from edgedistill.models.task_model import TaskModel, load_task_model, save_task_model

HIDDEN, KEPT = 32, 16


@pytest.fixture(scope="module")
def teacher(tiny_bert):
    model, tok = load_task_model(tiny_bert, "sentence-embedding")
    return model, tok


@pytest.fixture(scope="module")
def batch(teacher):
    texts = ["a man plays the guitar in the park", "the dog", "python function returns a list"]
    return dict(teacher[1](texts, padding=True, return_tensors="pt"))


class MaskedLayerNorm(nn.Module):
    """LayerNorm over the units ``keep`` only; every other unit is set to zero."""

    def __init__(self, norm: nn.LayerNorm, keep: torch.Tensor):
        super().__init__()
        self.norm, self.keep = norm, keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = nn.functional.layer_norm(x[..., self.keep], (len(self.keep),), self.norm.weight[self.keep],
                                        self.norm.bias[self.keep], self.norm.eps)
        return torch.zeros_like(x).index_copy(-1, self.keep, kept)


def masked_reference(model: TaskModel, keep: torch.Tensor) -> TaskModel:
    """The full-width model whose residual stream carries only ``keep`` (each LayerNorm masks the rest)."""
    ref = copy.deepcopy(model)
    emb = ref.base_model.embeddings
    emb.LayerNorm = MaskedLayerNorm(emb.LayerNorm, keep)
    for layer in ref.layers:
        layer.attention.output.LayerNorm = MaskedLayerNorm(layer.attention.output.LayerNorm, keep)
        layer.output.LayerNorm = MaskedLayerNorm(layer.output.LayerNorm, keep)
    return ref.eval()


def test_cut_model_equals_masked_reference(teacher, batch):
    model, _ = teacher
    scores = torch.zeros(HIDDEN)
    keep = torch.tensor([1, 4, 5, 9, 10, 11, 13, 17, 18, 20, 23, 24, 26, 28, 30, 31])
    scores[keep] = 1.0
    student = prune_hidden(model, KEPT, scores).eval()
    assert student.backbone.config.hidden_size == KEPT and student.dense is not None
    assert student.base_model.embeddings.word_embeddings.embedding_dim == KEPT
    with torch.no_grad():
        got, want = student(**batch), masked_reference(model, keep)(**batch)
    assert got.shape == (3, HIDDEN)  # the Dense projection restores the teacher's embedding width
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_weight_scores_match_a_per_parameter_reference(teacher):
    model, _ = teacher
    total = torch.zeros(HIDDEN)
    for name, p in model.named_parameters():
        w = p.detach().pow(2)
        if "embeddings" in name and name.endswith("embeddings.weight"):
            total += w.sum(0)  # (vocab, H): a column per unit
        elif "LayerNorm.weight" in name:
            total += w
        elif any(k in name for k in ("query.weight", "key.weight", "value.weight", "intermediate.dense.weight")):
            total += w.sum(0)  # reads the residual stream: input columns
        elif "attention.output.dense.weight" in name or (name.endswith("output.dense.weight")):
            total += w.sum(1)  # writes it: output rows
    torch.testing.assert_close(residual_weight_scores(model), total.sqrt())


def test_narrow_student_with_fewer_heads_saves_loads_and_exports(teacher, batch, tmp_path):
    from edgedistill.config import ExportConfig
    from edgedistill.export.exporter import export_onnx

    model, tok = teacher
    student = prune_hidden(prune_width(model, 1, 40), KEPT).eval()  # 1 head of 16 over a 16-wide stream
    save_task_model(student, tok, tmp_path / "s")
    assert (tmp_path / "s" / "2_Dense" / "model.safetensors").is_file()
    loaded, _ = load_task_model(tmp_path / "s", "sentence-embedding")
    assert loaded.backbone.config.hidden_size == KEPT and loaded.dense is not None
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch), student(**batch))
    onnx_path = tmp_path / "model.onnx"
    export_onnx(loaded, tok, ExportConfig(opset=18, dynamic={"batch": [1, 4], "sequence": [1, 32]}), onnx_path)
    import onnxruntime as ort

    feeds = {i.name: batch[i.name].numpy() for i in ort.InferenceSession(str(onnx_path)).get_inputs()}
    out = ort.InferenceSession(str(onnx_path)).run(None, feeds)[0]
    torch.testing.assert_close(torch.from_numpy(out), student(**batch).detach(), atol=1e-5, rtol=1e-4)


def test_wider_than_the_teacher_is_a_config_error(teacher):
    with pytest.raises(ConfigError, match=r"hidden_size: 64 > the teacher's 32"):
        prune_hidden(teacher[0], 64)
