"""`edgedistill --help` stays instant: the CLI module imports no heavy library."""

from __future__ import annotations

import subprocess
import sys


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from typer.testing import CliRunner; from edgedistill.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'onnx', 'matplotlib') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"--help imported {out.stdout.strip()}"


def test_every_stage_has_a_command():
    from typer.testing import CliRunner

    from edgedistill.cli import app

    text = CliRunner().invoke(app, ["--help"]).output
    for command in ("run", "distill", "export", "quantize", "bench", "report"):
        assert command in text
