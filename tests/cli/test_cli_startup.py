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


STAGE_COMMANDS = ("run", "distill", "export", "fuse", "quantize", "bench", "report", "build", "package", "estimate",
                  "compare", "examples", "unpack")


def test_every_stage_has_a_command():
    """Each stage is a registered command with its own help (not merely a word in the app's description)."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from edgedistill.cli import app

    registered = get_command(app).commands  # type: ignore[attr-defined]
    assert set(STAGE_COMMANDS) <= set(registered), set(STAGE_COMMANDS) - set(registered)
    assert {"build", "where"} <= set(registered["plugins"].commands)
    for command in STAGE_COMMANDS:
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert f"Usage: root {command}" in result.output or f" {command} [OPTIONS]" in result.output, result.output
