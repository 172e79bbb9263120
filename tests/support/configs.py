"""A tiny pipeline config (2-layer hidden-32 BERT teacher, a few texts, a made-up STS file) for pipeline tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def write_sts(path: Path, texts: list[str], pairs: int = 24) -> Path:
    """An STS-format file pairing texts with made-up scores (0-5), for pipeline tests."""
    rows = [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{(i * 7) % 6:.3f}\t{texts[i]}\t{texts[-i - 1]}"
        for i in range(pairs)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


SHAPES = [{"batch": 1, "seq": 16}, {"batch": 2, "seq": 16}]


def tiny_config(tmp_path: Path, tiny_bert: Path, tiny_texts: list[str]) -> Path:
    (tmp_path / "corpus.txt").write_text("\n".join(tiny_texts) + "\n")
    write_sts(tmp_path / "sts.csv", tiny_texts)
    cfg = {
        "name": "tiny",
        "teacher": {"path": str(tiny_bert)},
        "student": {"from_teacher": {"layers": [0]}},
        "data": {
            "train": [{"source": "text-lines", "path": "corpus.txt"}],
            "holdout": 8,
            "eval": {"source": "stsb", "path": "sts.csv"},
            "test": {"source": "stsb", "path": "sts.csv"},
        },
        "distill": {"steps": 4, "batch_size": 8, "checkpoint_every": 2},
        "export": {"opset": 18, "dynamic": {"batch": [1, 4], "sequence": [1, 32]}},
        "bench": {"shapes": SHAPES, "warmup": 1, "iterations": 3},
        "evaluate": {"batch_size": 16, "max_length": 32},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def student_config(tmp_path: Path, tiny_bert: Path) -> Path:
    """A 1-layer BERT the size of the tiny teacher, randomly initialised (a black-box teacher has no layers to copy)."""
    config = json.loads((tiny_bert / "config.json").read_text())
    config.update(num_hidden_layers=1, hidden_dropout_prob=0.0)
    path = tmp_path / "student" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(config))
    return path
