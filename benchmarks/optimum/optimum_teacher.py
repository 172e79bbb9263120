"""Optimum's artifacts of the teacher, built in a subprocess that can import Optimum.

`optimum-onnx` pins transformers < 4.58 while this project runs 5.x, so Optimum is not installed into the
project's environment; it can live in an overlay folder put first on PYTHONPATH for the subprocess only:

    .venv/bin/pip install --no-deps --target runs/optimum-env optimum==2.1.0 optimum-onnx==0.1.0 \\
        transformers==4.57.6 huggingface_hub==0.36.2 tokenizers==0.22.2 requests charset_normalizer urllib3 \\
        certifi idna

The overlay's default place is runs/optimum-env (git-ignored); the scripts that use it take --optimum-path.
The ONNX files it writes are then timed in our own process with ONNX Runtime, next to our artifacts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import OPTIMUM_ENV  # noqa: E402

DEFAULT_OVERLAY = OPTIMUM_ENV
BUILD = Path(__file__).with_name("build_teacher.py")


def optimum_env(overlay: Path | None = DEFAULT_OVERLAY) -> dict[str, str] | None:
    """Environment for a subprocess that can import Optimum's ONNX Runtime tools, or None if none can."""
    probe = [sys.executable, "-c", "import optimum.exporters.onnx, optimum.onnxruntime"]
    candidates: list[dict[str, str]] = [{}] + ([{"PYTHONPATH": str(overlay)}] if overlay and overlay.is_dir() else [])
    for extra in candidates:
        env = {**os.environ, **extra, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if subprocess.run(probe, env=env, capture_output=True).returncode == 0:
            return env
    return None


def build(teacher: Path, out: Path, env: dict[str, str]) -> dict[str, Path]:
    """Optimum's O2, O3 and dynamic INT8 artifacts of ``teacher`` under ``out``, by name (see build_teacher.py)."""
    done = subprocess.run([sys.executable, str(BUILD), str(teacher), str(out)], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"Optimum build failed:\n{done.stderr[-3000:]}")
    return {name: out / name / "model.onnx" for name in done.stdout.split()}
