"""Checking what the CLI shows a user."""

from __future__ import annotations

from typing import Any


def one_line_error(result: Any, *needles: str) -> str:
    """Assert a CliRunner result failed with exactly one ``error:`` line, no traceback, holding every needle;
    return that line."""
    assert result.exit_code != 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
