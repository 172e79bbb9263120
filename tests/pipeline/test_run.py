"""The whole pipeline on a tiny model, the skip-if-unchanged behaviour, and bad input through the CLI."""

from __future__ import annotations

import json

import pytest
import yaml
from support.cli import one_line_error
from support.configs import tiny_config
from typer.testing import CliRunner

from edgedistill.cli import app


def test_run_writes_every_stage_and_the_report(finished_run):
    _, out, output = finished_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"distill", "export", "fuse", "quantize", "evaluate", "bench", "report"}
    for entry in manifest["stages"].values():
        assert entry["outputs"] and entry["versions"]["torch"] and entry["wall_s"] >= 0
    report = json.loads((out / "report" / "report.json").read_text())
    names = [row["name"] for row in report["rows"]]
    assert names == ["teacher", "student-untrained", "student", "student-onnx", "student-fused", "student-dynamic-int8"]
    assert (out / "report" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "student-dynamic-int8" in (out / "report" / "report.md").read_text()
    assert not list(out.glob("*.partial"))


def test_onnx_student_matches_torch_student_quality(finished_run):
    _, out, _ = finished_run
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())["artifacts"]
    torch_q, onnx_q = metrics["student"], metrics["student-onnx"]
    assert onnx_q["fidelity_cosine"] == pytest.approx(torch_q["fidelity_cosine"], abs=1e-5)
    assert onnx_q["sts_test_spearman"] == pytest.approx(torch_q["sts_test_spearman"], abs=1e-3)
    assert metrics["teacher"]["fidelity_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["student-fused"]["fidelity_cosine"] == pytest.approx(onnx_q["fidelity_cosine"], abs=1e-6)


def test_rerun_skips_unchanged_stages_and_force_redoes_them(finished_run):
    config, out, _ = finished_run
    before = json.loads((out / "manifest.json").read_text())
    again = CliRunner().invoke(app, ["run", str(config), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert again.output.count("unchanged") == 7  # every stage, the report too
    assert json.loads((out / "manifest.json").read_text()) == before
    forced = CliRunner().invoke(app, ["run", str(config), "--out", str(out), "--force"])
    assert forced.exit_code == 0 and "unchanged" not in forced.output


def test_stages_alone_from_plain_paths(finished_run, tmp_path):
    _, out, _ = finished_run
    runner = CliRunner()
    onnx_file = out / "export" / "model.onnx"
    res = runner.invoke(app, ["fuse", str(onnx_file), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "(1 of 1 attention blocks, 1 with packed QKV, 1 with the unpadded fast path)" in res.output  # one layer
    plain = runner.invoke(app, ["fuse", str(onnx_file), "--out", str(tmp_path / "plain"), "--no-unpadded-fast-path"])
    assert plain.exit_code == 0 and "(1 of 1 attention blocks, 1 with packed QKV)" in plain.output, plain.output
    bad = runner.invoke(app, ["fuse", str(onnx_file), "--out", str(tmp_path / "bad"), "--unpadded-min-scores", "-1"])
    assert bad.exit_code != 0 and "unpadded_min_scores" in bad.output and "Traceback" not in bad.output
    res = runner.invoke(app, ["quantize", str(onnx_file), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    int8 = tmp_path / "quantize" / "dynamic-int8" / "model.onnx"
    assert int8.is_file()
    res = runner.invoke(app, ["bench", str(onnx_file), str(int8), "--out", str(tmp_path), "--shape", "2x8",
                              "--iterations", "3", "--backend", "onnxruntime"])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "bench" / "results.json").read_text())["results"]
    assert {r["shape"] for r in rows} == {"2x8"} and len(rows) == 2


def test_bad_inputs_give_one_line_and_leave_nothing(tmp_path, tiny_bert, tiny_texts, finished_run):
    runner = CliRunner()
    config = tiny_config(tmp_path, tiny_bert, tiny_texts)
    out = tmp_path / "out"
    text = config.read_text()

    config.write_text(text.replace("steps: 4", "stepz: 4"))
    one_line_error(runner.invoke(app, ["run", str(config), "--out", str(out)]), "distill.stepz: unknown key")

    config.write_text(text.replace(str(tiny_bert), str(tmp_path / "no-teacher")))
    one_line_error(runner.invoke(app, ["run", str(config), "--out", str(out)]), "teacher.path: file not found")

    (tmp_path / "corpus.txt").write_bytes(b"\xff\xfe\x00bad")
    config.write_text(text)
    one_line_error(runner.invoke(app, ["distill", str(config), "--out", str(out)]), "cannot read corpus")
    assert not (out / "distill").exists() and not (out / "distill.partial").exists()

    fake = tmp_path / "fake.onnx"
    fake.write_text("not a model")
    one_line_error(runner.invoke(app, ["quantize", str(fake), "--out", str(out)]), "fake.onnx")
    one_line_error(runner.invoke(app, ["bench", str(fake), "--out", str(out)]), "fake.onnx")

    exported = finished_run[1] / "export" / "model.onnx"
    one_line_error(runner.invoke(app, ["bench", str(exported), "--out", str(out), "--shape", "1x64"]),
                   "seq 64 is outside the exported range [1, 32]")
    assert not (out / "bench").exists() and not (out / "quantize").exists()


def test_debug_shows_traceback(tmp_path):
    result = CliRunner().invoke(app, ["--debug", "report", str(tmp_path)])
    assert result.exit_code != 0 and result.exception is not None


def test_static_int8_with_budget_from_a_text_file(finished_run, tmp_path, tiny_texts):
    _, out, _ = finished_run
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(tiny_texts) + "\n")
    res = CliRunner().invoke(app, ["quantize", str(out / "export" / "model.onnx"), "--out", str(tmp_path),
                                   "--mode", "static-int8", "--texts", str(texts), "--calibration-size", "32",
                                   "--budget-min", "0.9"])
    assert res.exit_code == 0, res.output
    made = json.loads((tmp_path / "manifest.json").read_text())["stages"]["quantize"]["metrics"]["artifacts"]
    assert len(made) == 1 and (tmp_path / made[0]["path"]).is_file()
    assert made[0]["meta"]["budget"]["met"] is True


def test_static_int8_without_texts_says_what_is_missing(finished_run, tmp_path):
    _, out, _ = finished_run
    res = CliRunner().invoke(app, ["quantize", str(out / "export" / "model.onnx"), "--out", str(tmp_path),
                                   "--mode", "static-int8"])
    one_line_error(res, "calibration")
    assert not (tmp_path / "quantize").exists()


def test_export_alone_with_auto_opset_and_bisect(finished_run, tmp_path):
    import onnx

    _, out, _ = finished_run
    res = CliRunner().invoke(app, ["export", str(out), "--out", str(tmp_path), "--opset", "auto", "--bisect",
                                   "--max-batch", "4", "--max-seq", "32"])
    assert res.exit_code == 0, res.output
    model = onnx.load(str(tmp_path / "export" / "model.onnx"), load_external_data=False)
    assert {o.domain: o.version for o in model.opset_import}[""] == 20  # auto for ONNX Runtime on a CPU
    assert json.loads((tmp_path / "export" / "bisect.json").read_text())
    bad = CliRunner().invoke(app, ["export", str(out), "--out", str(tmp_path), "--opset", "twenty"])
    one_line_error(bad, "--opset 'twenty'")


def test_pipeline_quantization_aware_distillation_reuses_the_run(finished_run, tmp_path):
    """qad-int8 in the pipeline: trains from the run's student and stored teacher outputs; earlier stages skip."""
    import shutil

    import edgedistill
    from edgedistill.config import load_config

    config, out, _ = finished_run
    run_dir = tmp_path / "run"
    shutil.copytree(out, run_dir)
    data = yaml.safe_load(config.read_text())
    data["quantize"] = [{"mode": "qad-int8", "qad_steps": 3, "calibration_size": 16}]
    qad_config = config.parent / "qad.yaml"
    qad_config.write_text(yaml.safe_dump(data))
    report = edgedistill.run(load_config(qad_config), run_dir)
    row = {r["name"]: r for r in report["rows"]}["student-qad-int8"]
    assert row["fidelity_cosine"] is not None and row["fidelity_cosine"] > 0.5
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["distill"] == json.loads((out / "manifest.json").read_text())["stages"]["distill"]
