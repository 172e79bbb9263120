"""Every benchmark suite under benchmarks/suites/ validates against the current BenchConfig."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgedistill.config import BenchConfig

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.mark.parametrize("suite", sorted((BENCHMARKS / "suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_suite_loads(suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])
    from suite import load_suite

    data, cfg = load_suite(suite)
    assert data["name"] and cfg.shapes


def test_yaml_off_and_on_mean_power_switches() -> None:
    assert BenchConfig.model_validate({"power": False}).power == "off"
    assert BenchConfig.model_validate({"power": True}).power == "on"
