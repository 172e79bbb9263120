"""Bad input and a failing machine get one line, a non-zero exit and nothing half-written: a teacher without a
vocabulary, a non-UTF-8 config, damaged weights, a file as --out, a full or read-only disk, a damaged manifest; and
`quantize: []`, progress off a terminal, the modes of the files written."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.cli import one_line_error
from support.configs import tiny_config
from typer.testing import CliRunner

from edgedistill.cli import app


@pytest.fixture
def config(tmp_path, tiny_bert, tiny_texts) -> Path:
    return tiny_config(tmp_path, tiny_bert, tiny_texts)


def edit(config: Path, **sections: object) -> Path:
    cfg = yaml.safe_load(config.read_text())
    for key, value in sections.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    config.write_text(yaml.safe_dump(cfg))
    return config


def teacher_copy(tiny_bert: Path, tmp_path: Path) -> Path:
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_bert, teacher)
    return teacher


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_teacher_without_vocabulary_is_refused(config, tmp_path, tiny_bert):
    teacher = teacher_copy(tiny_bert, tmp_path)
    for name in ("tokenizer.json", "vocab.txt"):
        (teacher / name).unlink()
    edit(config, teacher={"path": str(teacher)})
    line = one_line_error(invoke("distill", config, "--out", tmp_path / "out"), str(teacher), "degenerate",
                          "100% of the tokens of the training texts are unknown", "vocabulary has 5 entries")
    assert "copy the model's tokenizer files" in line
    assert not (tmp_path / "out" / "distill").exists() and not (tmp_path / "out" / "distill.partial").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_teacher_weights_are_one_line(config, tmp_path, tiny_bert, damage):
    teacher = teacher_copy(tiny_bert, tmp_path)
    weights = teacher / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000] if damage == "truncated" else b"\x00garbage" * 64)
    edit(config, teacher={"path": str(teacher)})
    one_line_error(invoke("distill", config, "--out", tmp_path / "out"), "weights file is damaged or incomplete",
                   "copy model.safetensors again")
    assert not (tmp_path / "out" / "distill").exists()


def test_a_config_that_is_not_utf8(config, tmp_path):
    config.write_bytes(config.read_bytes().replace(b"tiny", "t\u00e9".encode("latin-1"), 1))
    one_line_error(invoke("run", config, "--out", tmp_path / "out"), "not UTF-8 text", "save the config as UTF-8")


def test_out_that_is_a_file(config, tmp_path):
    (tmp_path / "taken").write_text("mine")
    one_line_error(invoke("distill", config, "--out", tmp_path / "taken"), "is a file, not a run directory")
    assert (tmp_path / "taken").read_text() == "mine"


@pytest.mark.parametrize(("code", "hint"), [(errno.ENOSPC, "free some disk space"),
                                            (errno.EROFS, "the filesystem is read-only")])
def test_a_full_or_read_only_disk_is_one_line(finished_run, tmp_path, monkeypatch, code, hint):
    import edgedistill.artifacts as artifacts

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run[1], run_dir)
    shutil.rmtree(run_dir / "report")

    def no_room(*args, dir=None, **kw):  # noqa: A002 (tempfile's name)
        raise OSError(code, os.strerror(code), str(dir))

    monkeypatch.setattr(artifacts.tempfile, "mkstemp", no_room)
    one_line_error(invoke("report", run_dir), os.strerror(code), hint, "nothing half-written was published")
    assert not (run_dir / "report").exists() and not (run_dir / "report.partial").exists()


def test_a_damaged_manifest_is_named(finished_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run[1], run_dir)
    text = (run_dir / "manifest.json").read_text()
    (run_dir / "manifest.json").write_text(text[: len(text) // 2])
    for command in (["report", run_dir], ["quantize", run_dir, "--out", run_dir]):
        one_line_error(invoke(*command), "manifest.json is damaged (JSONDecodeError", "restore it")


def test_quantize_empty_list_means_no_quantization(config, tmp_path):
    edit(config, quantize=[], fuse=None, bench={"shapes": [{"batch": 1, "seq": 16}], "iterations": 2})
    result = invoke("run", config, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load((tmp_path / "out" / "manifest.json").read_text())
    assert "quantize" not in manifest["stages"] and not (tmp_path / "out" / "quantize").exists()
    report = yaml.safe_load((tmp_path / "out" / "report" / "report.json").read_text())
    assert not [r for r in report["rows"] if "int8" in r["name"]]


def test_progress_lines_and_a_day_long_eta_when_not_on_a_terminal(config, tmp_path, monkeypatch):
    """Off a terminal, the distill stage logs its progress; an ETA over a day is warned about (the stage is
    interrupted here by the test, which stops at the first log line after the warning)."""
    import edgedistill.progress as progress

    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    monkeypatch.setattr(progress, "RATE_AFTER_S", 0.0)
    edit(config, distill={"steps": 1_000_000_000_000})
    lines: list[str] = []

    def capture(text, *args, **kw):
        lines.append(str(text))
        if "distilling: 3/" in str(text):
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.console, "print", capture)
    result = invoke("distill", config, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "interrupted" in result.output
    warning = next(line for line in lines if "warning" in line)
    assert "distilling: at " in warning and "years" in warning and "lower distill.steps" in warning
    logged = next(line for line in lines if line.startswith("distilling: 2/1000000000000"))
    assert ", loss " in logged and " steps/s" in logged and "ETA " in logged


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_artifacts_get_the_umasks_mode(tmp_path, tiny_bert, tiny_texts):
    """Under umask 022, what a run writes is 0644 (mkstemp's 0600 is too private for artifacts)."""
    config = tiny_config(tmp_path, tiny_bert, tiny_texts)
    code = ("import os, sys; os.umask(0o022); from edgedistill.cli import app; "
            "sys.argv = ['edgedistill', 'distill', sys.argv[1], '--out', sys.argv[2]]; app()")
    done = subprocess.run([sys.executable, "-c", code, str(config), str(tmp_path / "out")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out"
    written = [out / "distill" / "student" / "model.safetensors", out / "manifest.json",
               *out.glob("cache/teacher-*/outputs.npy"), *out.glob("cache/teacher-*/meta.json")]
    assert len(written) == 4 and all(mode(p) == 0o644 for p in written), {str(p): oct(mode(p)) for p in written}
