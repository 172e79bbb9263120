"""Students from the teacher for every family with an adapter: layers, FFN units and (where the family can save
them) heads cut, saved and loaded as themselves; other families and tasks get one line."""

from __future__ import annotations

import pytest
import torch
from support.tiny_models import DECODERS, ENCODERS, make_tiny_text_model

from edgedistill.distill.depth import select_layers
from edgedistill.distill.width import prune_width
from edgedistill.errors import ConfigError, InputError
from edgedistill.models.architectures import architecture_of
from edgedistill.models.task_model import load_task_model, save_task_model

TEXTS = ["a man plays the guitar in the park", "the dog", "python function returns a list of values"]
HEAD_PRUNING = {"bert"}


@pytest.fixture(scope="module", params=ENCODERS)
def teacher(request, tmp_path_factory):
    family = request.param
    folder = make_tiny_text_model(family, tmp_path_factory.mktemp(family) / "teacher")
    return family, *load_task_model(folder, "sentence-embedding")


def outputs(model, tokenizer):
    with torch.no_grad():
        return model.eval()(**tokenizer(TEXTS, padding=True, return_tensors="pt"))


def test_layers_are_kept_and_the_student_reloads(teacher, tmp_path):
    family, model, tokenizer = teacher
    student = select_layers(model, [1])
    arch = architecture_of(student.backbone)
    assert arch.num_layers(student.backbone.config) == 1 and len(student.layers) == 1
    assert len(model.layers) == 2  # the teacher is untouched
    torch.testing.assert_close(student.layers[0].state_dict(), model.layers[1].state_dict())
    save_task_model(student, tokenizer, tmp_path / "student")
    loaded, _ = load_task_model(tmp_path / "student", "sentence-embedding")
    torch.testing.assert_close(outputs(loaded, tokenizer), outputs(student, tokenizer))


def test_ffn_units_are_cut_and_the_student_reloads(teacher, tmp_path):
    family, model, tokenizer = teacher
    student = prune_width(model, None, 16)
    arch = architecture_of(student.backbone)
    assert arch.ffn_size(student.backbone.config) == 16
    assert arch.projection(student.layers[0], arch.ffn_out).weight.shape[1] == 16
    save_task_model(student, tokenizer, tmp_path / "student")
    loaded, _ = load_task_model(tmp_path / "student", "sentence-embedding")
    torch.testing.assert_close(outputs(loaded, tokenizer), outputs(student, tokenizer))
    identity = prune_width(model, None, None)
    torch.testing.assert_close(outputs(identity, tokenizer), outputs(model, tokenizer), rtol=0, atol=0)


def test_heads_are_cut_where_the_family_can_save_them(teacher, tmp_path):
    family, model, tokenizer = teacher
    if family not in HEAD_PRUNING:
        with pytest.raises(ConfigError, match=f"a {architecture_of(model.backbone).name} model cannot be saved with "
                                              "fewer heads.*heads can be cut for bert, vit"):
            prune_width(model, 1, None)
        return
    student = prune_width(model, 1, None)
    arch = architecture_of(student.backbone)
    assert arch.num_heads(student.backbone.config) == 1 and arch.head_size(student.backbone.config) == 16
    save_task_model(student, tokenizer, tmp_path / "student")
    loaded, _ = load_task_model(tmp_path / "student", "sentence-embedding")
    torch.testing.assert_close(outputs(loaded, tokenizer), outputs(student, tokenizer))


def test_a_family_without_adapter_is_named_with_the_supported_ones(tmp_path):
    from transformers import AlbertConfig, AlbertModel

    from edgedistill.models.task_model import TaskModel

    model = TaskModel(AlbertModel(AlbertConfig(hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                               embedding_size=16, num_hidden_layers=2)), "sentence-embedding")
    with pytest.raises(ConfigError, match="model type 'albert' is not a family edgedistill can slice; supported: "
                                          r"bert \(bert, pruned_bert\); roberta \(roberta, xlm-roberta"):
        select_layers(model, [0])


@pytest.mark.parametrize("family", DECODERS)
def test_a_causal_lm_is_not_pooled_into_sentence_embeddings(family, tmp_path):
    folder = make_tiny_text_model(family, tmp_path / family)
    with pytest.raises(InputError, match=f"a {family} model is a decoder \\(causal LM\\); task sentence-embedding"):
        load_task_model(folder, "sentence-embedding")
