"""Width reduction: heads and FFN units kept by importance, sliced consistently, saved and loaded as themselves."""

from __future__ import annotations

import copy

import pytest
import torch

from edgedistill.distill.width import keep_top, prune_width, unit_activation_scores, unit_weight_scores
from edgedistill.errors import ConfigError
from edgedistill.models.architectures import families
from edgedistill.models.task_model import TaskModel, load_task_model, save_task_model

HEADS, HEAD_SIZE, FFN = 4, 8, 64  # tiny BERT: hidden 32 = 4 heads x 8, intermediate 2 x hidden


@pytest.fixture(scope="module")
def teacher(tiny_bert):
    """The tiny BERT's tokenizer with a 4-head, 2-layer BERT (hidden 32) built here."""
    from transformers import BertConfig, BertModel

    _, tok = load_task_model(tiny_bert, "sentence-embedding")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=HEADS,
                        intermediate_size=FFN)
    return TaskModel(BertModel(config).eval(), "sentence-embedding"), tok


@pytest.fixture(scope="module")
def batch(teacher):
    return dict(teacher[1](["a man plays the guitar in the park", "the dog"], padding=True, return_tensors="pt"))


def chosen(heads: list[int], units: list[int], layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Scores that make exactly ``heads`` and ``units`` the top ones in every layer."""
    h, u = torch.zeros(HEADS), torch.zeros(FFN)
    h[heads], u[units] = 1.0, 1.0
    return [(h, u)] * layers


def test_same_size_is_identity(teacher, batch):
    model, _ = teacher
    student = prune_width(model, HEADS, FFN)
    torch.testing.assert_close(student(**batch), model(**batch), rtol=0, atol=0)
    assert student.backbone.config.model_type == "bert"


def test_pruned_equals_masked_reference(teacher, batch):
    """Dropping heads/units equals zeroing their only way out: attention-output and FFN-output columns."""
    model, _ = teacher
    heads, units = [1, 3], list(range(0, FFN, 3))
    student = prune_width(model, 2, len(units), chosen(heads, units))
    reference = copy.deepcopy(model)
    dropped_cols = [c for h in range(HEADS) if h not in heads for c in range(h * HEAD_SIZE, (h + 1) * HEAD_SIZE)]
    dropped_units = [u for u in range(FFN) if u not in units]
    with torch.no_grad():
        for layer in reference.layers:
            layer.attention.output.dense.weight[:, dropped_cols] = 0
            layer.output.dense.weight[:, dropped_units] = 0
    torch.testing.assert_close(student(**batch), reference(**batch), rtol=1e-5, atol=1e-6)
    q = student.layers[0].attention.self.query.weight
    torch.testing.assert_close(q, model.layers[0].attention.self.query.weight[[*range(8, 16), *range(24, 32)]])
    assert student.backbone.config.num_attention_heads == 2 and student.backbone.config.intermediate_size == 22


def test_weight_magnitude_ranks_heads_and_units():
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertLayer

    config = BertConfig(hidden_size=4, num_attention_heads=2, intermediate_size=3)
    layer = BertLayer(config)  # a BERT-shaped layer with known norms
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.attention.self.query.weight[2:4] = 1.0  # head 1: 2 rows x 4 = 8 ones → norm √8
        layer.attention.output.dense.weight[:, 0] = 2.0  # head 0: 4 rows x 1 col of 2 → norm √16
        layer.intermediate.dense.weight[2] = 3.0  # unit 2: 4 x 3 → √36 = 6
    heads, units = unit_weight_scores(families.BERT, config, layer)
    torch.testing.assert_close(heads, torch.tensor([4.0, 8**0.5]))
    torch.testing.assert_close(units, torch.tensor([0.0, 0.0, 6.0]))
    assert keep_top(heads, 1).tolist() == [0] and keep_top(units, 2).tolist() == [0, 2]  # ties: earlier unit


def test_activation_scores_rank_live_units(teacher):
    model, tok = teacher
    scores = unit_activation_scores(model, tok, ["a man plays the guitar", "the dog runs"], 32)
    assert len(scores) == 2 and scores[0][0].shape == (HEADS,) and scores[0][1].shape == (FFN,)
    silenced = copy.deepcopy(model)
    with torch.no_grad():
        silenced.layers[0].attention.output.dense.weight[:, :HEAD_SIZE] = 0  # head 0 contributes nothing
    assert unit_activation_scores(silenced, tok, ["a man plays the guitar"], 32)[0][0][0] == 0


def test_pruned_student_saves_loads_and_exports(teacher, batch, tmp_path):
    from transformers import AutoModel

    model, tok = teacher
    student = prune_width(model, 3, 40)
    save_task_model(student, tok, tmp_path / "s")
    loaded, _ = load_task_model(tmp_path / "s", "sentence-embedding")
    assert loaded.backbone.config.model_type == "pruned_bert"
    torch.testing.assert_close(loaded(**batch), student.eval()(**batch))
    assert AutoModel.from_pretrained(tmp_path / "s").encoder.layer[1].attention.self.query.out_features == 24


@pytest.mark.parametrize(("heads", "units", "message"), [
    (5, None, r"heads: 5 > the teacher's 4 attention heads"),
    (None, 65, r"intermediate_size: 65 > the teacher's 64"),
])
def test_width_errors(teacher, heads, units, message):
    with pytest.raises(ConfigError, match=message):
        prune_width(teacher[0], heads, units)
