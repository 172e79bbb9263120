"""Table, dataset and image-folder sources: texts in row order, pairs, and errors naming what was found."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgedistill.config import TextSource
from edgedistill.data.corpus import load_source
from edgedistill.data.images import read_image_folder
from edgedistill.errors import InputError


def source(tmp_path: Path, **data: object) -> TextSource:
    return TextSource.model_validate(data, context={"base_dir": tmp_path})


def test_jsonl_csv_tsv_columns_and_pairs(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "one", "other": "x"}\n\n{"text": "two", "other": "y"}\n')
    (tmp_path / "a.csv").write_text('s1,s2\n"a, b",c\nd,e\n')
    (tmp_path / "a.tsv").write_text("q\tlabel\nwhat is it\t1\n")
    assert load_source(source(tmp_path, source="jsonl", path="a.jsonl")) == ["one", "two"]
    assert load_source(source(tmp_path, source="csv", path="a.csv", column="s1", text_pair="s2")) == [
        "a, b", "c", "d", "e"]
    assert load_source(source(tmp_path, source="tsv", path="a.tsv", column="q", limit=1)) == ["what is it"]


@pytest.mark.parametrize(("data", "message"), [
    ({"source": "csv", "path": "a.csv", "column": "text"}, "no column 'text'; columns found: s1, s2"),
    ({"source": "csv", "path": "a.csv", "column": "s1", "text_pair": "s3"}, "no column 's3'"),
    ({"source": "text-lines", "path": "a.csv", "column": "s1"}, "'column' does not apply to source 'text-lines'"),
    ({"source": "csv", "path": "a.csv", "column": "s1", "split": "train"}, "'split' does not apply"),
    ({"source": "jsonl"}, "source 'jsonl' needs a 'path'"),
])
def test_table_config_errors(tmp_path, data, message):
    (tmp_path / "a.csv").write_text("s1,s2\na,b\n")
    with pytest.raises(ValueError, match=message):
        source(tmp_path, **data)


def test_bad_jsonl_line_is_named(tmp_path):
    (tmp_path / "b.jsonl").write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(InputError, match=r"b.jsonl:2: not valid JSON"):
        load_source(source(tmp_path, source="jsonl", path="b.jsonl"))


def test_hf_dataset_from_disk_and_files(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"sentence": ["s1", "s2"], "pair": ["p1", "p2"]})}
                         ).save_to_disk(str(tmp_path / "ds"))
    loaded = load_source(source(tmp_path, source="hf-dataset", path="ds", column="sentence", text_pair="pair"))
    assert loaded == ["s1", "p1", "s2", "p2"]
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": "from file"}) + "\n")
    assert load_source(source(tmp_path, source="hf-dataset", path="d.jsonl")) == ["from file"]
    with pytest.raises(InputError, match="no column 'text'; columns found: sentence, pair"):
        load_source(source(tmp_path, source="hf-dataset", path="ds"))
    with pytest.raises(InputError, match="no split 'test'; splits found: train"):
        load_source(source(tmp_path, source="hf-dataset", path="ds", split="test"))


def test_image_folder_classes_in_sorted_order(tmp_path):
    from PIL import Image

    for cls, value in (("zero", 0), ("one", 255)):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.full((4, 6), value, dtype=np.uint8)).save(tmp_path / "img" / cls / f"{i}.png")
    data = read_image_folder(tmp_path / "img", size=(8, 8), grey=True)
    assert data.classes == ["one", "zero"] and data.labels.tolist() == [0, 0, 1, 1]
    assert data.images.shape == (4, 1, 8, 8) and data.images[0].min() == 1.0 and data.images[3].max() == 0.0
    (tmp_path / "img" / "empty").mkdir()
    with pytest.raises(InputError, match="class 'empty' has no images"):
        read_image_folder(tmp_path / "img", size=(8, 8))
