"""Copying tokenizer files makes an ONNX folder loadable with AutoTokenizer."""

from __future__ import annotations

from transformers import AutoTokenizer

from edgedistill.models.tokenizer_files import copy_preprocessor_files


def test_copy_makes_folder_loadable(tiny_bert, tmp_path):
    copied = copy_preprocessor_files(tiny_bert, tmp_path)
    assert set(copied) == {"tokenizer.json", "tokenizer_config.json", "vocab.txt"}
    assert not (tmp_path / "config.json").exists()
    text = "the dog plays with a red ball"
    assert AutoTokenizer.from_pretrained(tmp_path)(text)["input_ids"] == AutoTokenizer.from_pretrained(tiny_bert)(
        text
    )["input_ids"]


def test_empty_source_copies_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    assert copy_preprocessor_files(tmp_path / "src", tmp_path) == []
