"""A run directory under kills and a second process: a checkpoint resumes only the config it was made under, and
one process at a time works in a run directory. Runs are real processes, killed with SIGKILL once a checkpoint is on
disk (never after a fixed sleep)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from support.configs import tiny_config

LONG = 5000  # steps: the run is killed long before it could finish


def write(config: Path, **distill: object) -> Path:
    cfg = yaml.safe_load(config.read_text())
    layers = distill.pop("layers", None)
    cfg["distill"].update({"checkpoint_every": 2, "keep_better": False, **distill})
    if layers is not None:
        cfg["student"]["from_teacher"]["layers"] = layers
    config.write_text(yaml.safe_dump(cfg))
    return config


def distill(config: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS",)}
    return subprocess.Popen([sys.executable, "-m", "edgedistill", "distill", str(config), "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    output, _ = proc.communicate(timeout=timeout)
    return proc.returncode, output


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120, newer_than: int = 0) -> None:
    """Until ``path`` exists (written after ``newer_than``, an mtime in ns), or fail if the run ends first."""
    deadline = time.monotonic() + timeout
    while not path.is_file() or path.stat().st_mtime_ns <= newer_than:
        assert proc.poll() is None, f"the run ended before {path} appeared:\n{proc.communicate()[0]}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def killed_at_a_checkpoint(config: Path, out: Path) -> int:
    proc = distill(config, out)
    wait_for(out / "distill.partial" / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.pid


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "distill" / "student" / "model.safetensors")


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture
def config(tmp_path, tiny_bert, tiny_texts) -> Path:
    return tiny_config(tmp_path, tiny_bert, tiny_texts)


@pytest.mark.parametrize(("change", "said"), [({"lr": 3e-4}, "distill.distill.lr"),
                                              ({"layers": [0, 1]}, "distill.student.from_teacher.layers")])
def test_a_checkpoint_made_under_another_config_is_not_resumed(config, tmp_path, change, said):
    out = tmp_path / "out"
    killed_at_a_checkpoint(write(config, steps=LONG), out)
    code, output = finish(distill(write(config, steps=6, **change), out))
    assert code == 0, output
    said = said.removeprefix("distill.")
    assert "was made under another config" in output and said in output and "starting afresh" in output, output
    assert "resuming" not in output
    code, clean = finish(distill(config, tmp_path / "clean"))
    assert code == 0, clean
    assert_same_weights(weights(out), weights(tmp_path / "clean"))
    manifest = yaml.safe_load((out / "manifest.json").read_text())
    assert manifest["stages"]["distill"]["config"]["distill"]["steps"] == 6


def test_an_unchanged_run_resumes_and_force_starts_afresh(config, tmp_path):
    out = tmp_path / "out"
    write(config, steps=LONG)
    killed_at_a_checkpoint(config, out)
    checkpoint = out / "distill.partial" / "checkpoint.pt"
    proc = distill(config, out)  # the same config: resumes (then killed again, it is long)
    wait_for(checkpoint, proc, newer_than=checkpoint.stat().st_mtime_ns)
    proc.send_signal(signal.SIGKILL)
    output = proc.communicate()[0]
    assert "resuming from step " in output and f" of {LONG} " in output, output
    code, forced = finish(distill(write(config, steps=6), out, "--force"))
    assert code == 0 and "--force: discarding the partial work" in forced, forced
    code, clean = finish(distill(config, tmp_path / "clean"))
    assert_same_weights(weights(out), weights(tmp_path / "clean"))


def test_a_second_process_is_refused_and_a_dead_ones_lock_taken_over(config, tmp_path):
    out = tmp_path / "out"
    first = distill(write(config, steps=LONG), out)
    wait_for(out / "distill.partial" / "checkpoint.pt", first)
    second = distill(write(config, steps=6, seed=1), out)
    code, output = finish(second, timeout=60)
    assert code == 1 and output.strip().splitlines()[-1].startswith("error: InputError: run directory "), output
    assert f"is in use by process {first.pid} (" in output and "Traceback" not in output, output
    assert first.poll() is None  # the first run was not disturbed
    first.send_signal(signal.SIGKILL)
    first.wait()
    code, output = finish(distill(config, out))
    assert code == 0, output
    assert f"taking over the lock left by process {first.pid}" in output and "starting afresh" in output, output
    code, clean = finish(distill(config, tmp_path / "clean"))
    assert_same_weights(weights(out), weights(tmp_path / "clean"))
