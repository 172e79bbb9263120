"""A finished `edgedistill run` of the tiny config, shared by the pipeline tests (read-only: copy it to change it)."""

from __future__ import annotations

import pytest
from support.configs import tiny_config
from typer.testing import CliRunner

from edgedistill.cli import app


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_bert, tiny_texts):
    tmp = tmp_path_factory.mktemp("run")
    config = tiny_config(tmp, tiny_bert, tiny_texts)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp / "out")])
    assert result.exit_code == 0, result.output
    return config, tmp / "out", result.output
