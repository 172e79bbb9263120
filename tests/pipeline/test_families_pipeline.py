"""Every family edgedistill has an adapter for, as a tiny random model, through the whole pipeline: distill
(a student from the teacher's layers) → export → fuse → quantize → evaluate → bench → report."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from support.tiny_models import FAMILIES, WORDS, make_tiny, write_image_folder
from typer.testing import CliRunner

from edgedistill.cli import app

ARTIFACTS = ["teacher", "student-untrained", "student", "student-onnx", "student-fused", "student-dynamic-int8"]


def text_data(tmp_path: Path) -> dict:
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) for _ in range(60)]
    (tmp_path / "train.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "eval.csv").write_text("text,label\n" + "".join(f"{t},{i % 3}\n" for i, t in enumerate(texts[:24])))
    return {"train": {"source": "text-lines", "path": "train.txt"}, "holdout": 8}


def config(tmp_path: Path, family: str, task: str) -> Path:
    teacher = make_tiny(family, tmp_path / "teacher", task)
    if family == "vit":
        write_image_folder(tmp_path / "images", per_class=6, seed=1)
        write_image_folder(tmp_path / "eval", per_class=3, seed=2)
        data = {"train": {"source": "image-folder", "path": "images"}, "holdout": 4,
                "eval": {"source": "image-folder", "path": "eval"}}
        shapes = [{"batch": 2}]
    else:
        data = text_data(tmp_path)
        if task == "sequence-classification":
            data["eval"] = {"source": "csv", "path": "eval.csv"}
        shapes = [{"batch": 2, "seq": 16}]
    losses = [{"name": "embedding_mse"}] if task == "sentence-embedding" else [{"name": "logits_kl"}]
    cfg = {"name": family, "teacher": {"path": str(teacher), "task": task},
           "student": {"from_teacher": {"layers": [1]}}, "data": data,
           "distill": {"losses": losses, "steps": 3, "batch_size": 8, "keep_better": False},
           "export": {"dynamic": {"batch": [1, 4], "sequence": [1, 32]}},
           "bench": {"shapes": shapes, "iterations": 2, "warmup": 1, "rounds": 2},
           "evaluate": {"batch_size": 8, "max_length": 32}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


CASES = [(f, "image-classification" if f == "vit" else "sentence-embedding") for f in FAMILIES]
CASES += [("bert", "sequence-classification")]


@pytest.mark.parametrize(("family", "task"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_a_tiny_model_of_every_family_goes_through_the_pipeline(family, task, tmp_path):
    result = CliRunner().invoke(app, ["run", str(config(tmp_path, family, task)), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"distill", "export", "fuse", "quantize", "evaluate", "bench", "report"}
    assert manifest["stages"]["distill"]["metrics"]["student_layers"] == [1]
    assert manifest["stages"]["export"]["metrics"]["verification"]["passed"]
    attention = manifest["stages"]["fuse"]["metrics"]["attention"]
    assert attention["found"] == attention["fused"] == 1, attention  # the student's one layer
    report = json.loads((out / "report" / "report.json").read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == ARTIFACTS
    fidelity = "fidelity_cosine" if task == "sentence-embedding" else "agreement"
    assert rows["teacher"][fidelity] == pytest.approx(1.0, abs=1e-5)
    assert rows["student-onnx"][fidelity] == pytest.approx(rows["student"][fidelity], abs=1e-4)
    if task != "sentence-embedding":
        assert 0.0 <= rows["student-fused"]["accuracy_eval"] <= 1.0
    shape = report["shapes"][0]
    assert all(rows[n]["latency"][shape]["p50_ms"] > 0 for n in ARTIFACTS if n != "student-untrained")
