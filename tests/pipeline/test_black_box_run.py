"""`edgedistill run` with black-box teachers: an ONNX file run locally, and a log of recorded outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from support.configs import student_config, tiny_config
from typer.testing import CliRunner

from edgedistill.cli import app
from edgedistill.config import ExportConfig
from edgedistill.export.exporter import export_onnx
from edgedistill.models.task_model import load_task_model


def black_box_config(tmp_path: Path, tiny_bert: Path, tiny_texts: list[str], teacher: dict) -> Path:
    path = tiny_config(tmp_path, tiny_bert, tiny_texts)
    cfg = yaml.safe_load(path.read_text())
    cfg["teacher"] = teacher
    cfg["student"] = {"hf_config": str(student_config(tmp_path, tiny_bert))}
    path.write_text(yaml.safe_dump(cfg))
    return path


def run(config: Path, out: Path) -> dict:
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report" / "report.json").read_text())


def test_onnx_teacher_runs_the_whole_pipeline(tmp_path, tiny_bert, tiny_texts):
    model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
    export_onnx(model, tokenizer, ExportConfig(opset=18), tmp_path / "teacher" / "model.onnx")
    config = black_box_config(tmp_path, tiny_bert, tiny_texts,
                              {"source": "onnx", "path": str(tmp_path / "teacher" / "model.onnx"),
                               "tokenizer": str(tiny_bert)})
    report = run(config, tmp_path / "out")
    rows = {r["name"]: r for r in report["rows"]}
    assert report["teacher"] == "teacher" and rows["teacher"]["backend"] == "onnxruntime"
    assert rows["teacher"]["fidelity_cosine"] > 0.9999  # the teacher against its own labels
    assert rows["student-dynamic-int8"]["speedup_p50"]  # benchmarked against the ONNX teacher


def test_recorded_teacher_runs_with_its_stored_labels(tmp_path, tiny_bert, tiny_texts):
    import torch

    model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
    with torch.no_grad():
        vectors = model(**tokenizer(tiny_texts, padding=True, return_tensors="pt")).numpy()
    log = tmp_path / "recorded.jsonl"
    log.write_text("".join(json.dumps({"input": t, "output": v.tolist()}) + "\n" for t, v in zip(tiny_texts, vectors)))
    config = black_box_config(tmp_path, tiny_bert, tiny_texts,
                              {"source": "recorded", "path": str(log), "tokenizer": str(tiny_bert)})
    report = run(config, tmp_path / "out")
    rows = {r["name"]: r for r in report["rows"]}
    assert report["teacher"] is None and "teacher" not in rows  # nothing local to run or time
    fidelity = [rows[n]["fidelity_cosine"] for n in ("student-untrained", "student", "student-dynamic-int8")]
    assert all(np.isfinite(f) for f in fidelity)  # against the recorded outputs of the held-out texts
