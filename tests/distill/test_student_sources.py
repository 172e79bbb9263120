"""Students from a Hugging Face config or a user factory, and the config that chooses among student kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from edgedistill.config import parse_config
from edgedistill.distill.stage import derive_student
from edgedistill.errors import ConfigError
from edgedistill.models.teachers.huggingface import HuggingFaceTeacher

TEXTS = ["a man plays the guitar", "the dog runs in the park"]


def config(tmp_path: Path, tiny_bert: Path, student: dict) -> object:
    (tmp_path / "corpus.txt").write_text("\n".join(TEXTS) + "\n")
    return parse_config({"name": "t", "teacher": {"path": str(tiny_bert)}, "student": student,
                         "data": {"train": {"source": "text-lines", "path": "corpus.txt"}, "holdout": 1},
                         "distill": {"seed": 3}}, base_dir=tmp_path)


@pytest.fixture(scope="module")
def teacher(tiny_bert):
    return HuggingFaceTeacher.load(tiny_bert, "sentence-embedding", 32)


def write_bert_config(path: Path, vocab: int, hidden: int = 32) -> Path:
    path.write_text(json.dumps({"model_type": "bert", "vocab_size": vocab, "hidden_size": hidden,
                                "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 48}))
    return path


def test_student_from_hf_config_is_seeded_random_init(tmp_path, tiny_bert, teacher):
    write_bert_config(tmp_path / "student.json", len(teacher.tokenizer))
    cfg = config(tmp_path, tiny_bert, {"hf_config": "student.json"})
    a, info = derive_student(cfg, teacher, TEXTS, output_width=32)
    b, _ = derive_student(cfg, teacher, TEXTS, output_width=32)
    assert info == {"student_source": "hf_config"} and len(a.layers) == 1
    assert a.backbone.config.intermediate_size == 48 and a.pooling == "mean" and a.normalize
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)  # same seed, same init
    assert not torch.equal(a.layers[0].output.dense.weight, teacher.model.layers[0].output.dense.weight)


def test_hf_config_student_must_fit_tokenizer_and_width(tmp_path, tiny_bert, teacher):
    write_bert_config(tmp_path / "small_vocab.json", 10)
    with pytest.raises(ConfigError, match=r"vocab_size 10 is smaller than the teacher tokenizer's \d+ tokens"):
        derive_student(config(tmp_path, tiny_bert, {"hf_config": "small_vocab.json"}), teacher, TEXTS, 32)
    write_bert_config(tmp_path / "narrow.json", len(teacher.tokenizer), hidden=16)
    with pytest.raises(ConfigError, match="outputs have 16 values per input but the teacher's have 32"):
        derive_student(config(tmp_path, tiny_bert, {"hf_config": "narrow.json"}), teacher, TEXTS, 32)


FACTORY = '''
from transformers import BertConfig, BertModel

def make():
    return BertModel(BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                intermediate_size=40))

def wrong():
    return 42
'''


def test_student_from_factory(tmp_path, tiny_bert, teacher, monkeypatch):
    (tmp_path / "my_students.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    student, info = derive_student(config(tmp_path, tiny_bert, {"factory": "my_students:make"}), teacher, TEXTS, 32)
    assert info == {"student_source": "factory"} and student.backbone.config.num_attention_heads == 4
    enc = teacher.tokenizer(TEXTS, padding=True, return_tensors="pt")
    assert student(**enc).shape == (2, 32)
    with pytest.raises(ConfigError, match="returned int; return a TaskModel or a Hugging Face PreTrainedModel"):
        derive_student(config(tmp_path, tiny_bert, {"factory": "my_students:wrong"}), teacher, TEXTS)
    with pytest.raises(ConfigError, match="module 'my_students' has no 'absent'"):
        derive_student(config(tmp_path, tiny_bert, {"factory": "my_students:absent"}), teacher, TEXTS)


def test_width_reduced_student_from_config(tmp_path, tiny_bert, teacher):
    spec = {"from_teacher": {"layers": [1], "heads": 1, "intermediate_size": 20, "importance": "activation"}}
    student, info = derive_student(config(tmp_path, tiny_bert, spec), teacher, TEXTS, 32)
    assert info == {"student_layers": [1], "student_heads": 1, "student_intermediate_size": 20,
                    "student_hidden_size": 32}
    assert student.layers[0].attention.self.query.out_features == 16


@pytest.mark.parametrize("importance", ["weight", "activation"])
def test_narrow_hidden_student_from_config_keeps_the_teacher_width(tmp_path, tiny_bert, teacher, importance):
    spec = {"from_teacher": {"layers": [0, 1], "heads": 1, "hidden_size": 16, "importance": importance}}
    student, info = derive_student(config(tmp_path, tiny_bert, spec), teacher, TEXTS, 32)
    assert info["student_hidden_size"] == 16 and info["student_heads"] == 1
    enc = teacher.tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    assert student.base_model.embeddings.word_embeddings.embedding_dim == 16
    assert student(**enc).shape == (2, 32)  # through the Dense projection: the teacher's embedding space


@pytest.mark.parametrize(("student", "message"), [
    ({}, "give exactly one of from_teacher, hf_config, factory, search; got none"),
    ({"from_teacher": {"layers": [0]}, "factory": "m:f"}, "got from_teacher, factory"),
    ({"factory": "not a path"}, "factory must look like 'package.module:function'"),
    ({"hf_config": "missing.json"}, "student.hf_config: file not found"),
    ({"from_teacher": {"layers": [0], "heads": 0}}, "student.from_teacher.heads"),
])
def test_student_config_errors(tmp_path, tiny_bert, student, message):
    with pytest.raises(ConfigError, match=message):
        config(tmp_path, tiny_bert, student)
