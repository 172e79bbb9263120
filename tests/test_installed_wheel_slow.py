"""`pip install .` (not editable) into a new virtualenv, then, from another folder: the CLI, a shipped example run
end to end, and the native library built from the package's own sources (minutes: `pytest -m slow`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the Makefile's pin: the CPU build where pip is offered one


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{output}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(venv bin folder, a folder outside the checkout, the environment to run in)."""
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEDISTILL_", "PYTHON", "VIRTUAL_ENV"))}
    env["XDG_CACHE_HOME"] = str(root / "cache")
    run([sys.executable, "-m", "venv", str(root / "venv")], root, env)
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run([*pip, TORCH], root, env)
    run([*pip, f"{REPO}[demo]"], root, env)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return root / "venv" / "bin", elsewhere, env


@pytest.mark.slow
def test_the_package_is_the_installed_copy(installed):
    bin_dir, elsewhere, env = installed
    where = run([str(bin_dir / "python"), "-c", "import edgedistill; print(edgedistill.__file__)"], elsewhere, env)
    assert "site-packages" in where.stdout and str(REPO) not in where.stdout
    assert "run" in run([str(bin_dir / "edgedistill"), "--help"], elsewhere, env).stdout
    examples = run([str(bin_dir / "edgedistill"), "examples"], elsewhere, env).stdout
    assert "pkg:edgedistill/examples/minilm-cpu.yaml" in examples and "site-packages" in examples
    assert "jetson-orin-nano-8gb" in run([str(bin_dir / "edgedistill"), "targets"], elsewhere, env).stdout


@pytest.mark.slow
def test_plugins_build_into_the_user_cache_and_the_override_is_honoured(installed, tmp_path):
    bin_dir, elsewhere, env = installed
    cli = str(bin_dir / "edgedistill")
    built = run([cli, "plugins", "build", "--cuda-archs", "87", "-j", "2"], elsewhere, env).stdout
    cache = Path(env["XDG_CACHE_HOME"]) / "edgedistill" / "plugins"
    assert built.strip().startswith(f"built: {cache}")
    found = run([cli, "plugins", "where"], elsewhere, env).stdout
    assert f"edgedistill_attention: {cache}" in found
    library = next(cache.glob("*/lib/libedgedistill_attention.so"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / library.name).write_bytes(library.read_bytes())
    found = run([cli, "plugins", "where"], elsewhere, {**env, "EDGEDISTILL_PLUGIN_DIR": str(tmp_path / "mine")})
    assert f"edgedistill_attention: {tmp_path / 'mine' / library.name}" in found.stdout


@pytest.mark.slow
def test_a_shipped_example_runs_end_to_end_from_another_folder(installed):
    bin_dir, elsewhere, env = installed
    done = run([str(bin_dir / "edgedistill"), "run", "pkg:edgedistill/examples/minilm-quick.yaml", "--out", "runs/q"],
               elsewhere, env)
    report = json.loads((elsewhere / "runs" / "q" / "report" / "report.json").read_text())
    rows = {r["name"]: r for r in report["rows"]}
    assert {"teacher", "student", "student-onnx", "student-fused", "student-dynamic-int8"} <= set(rows)
    assert rows["teacher"]["sts_eval_spearman"] == pytest.approx(86.7, abs=0.2)  # the shipped STS-B dev split
    assert rows["student-dynamic-int8"]["latency"]["1x128"]["p50_ms"] > 0
    assert "…" not in done.stdout and max(map(len, done.stdout.splitlines())) <= 80
