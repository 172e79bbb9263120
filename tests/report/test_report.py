"""The report joins fake metrics and bench results into markdown, JSON ratios and a PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from edgedistill.api import report as write_report
from edgedistill.artifacts import read_json
from edgedistill.errors import InputError
from edgedistill.report import markdown_table, print_table


def test_report_json_ratios(run_dir: Path) -> None:
    out = write_report(run_dir)
    assert read_json(run_dir / "report" / "report.json") == out
    manifest = read_json(run_dir / "manifest.json")["stages"]["report"]
    assert manifest["metrics"]["artifacts"][0] | {"meta": None} == {"name": "report", "kind": "report", "meta": None,
                                                                    "task": "sentence-embedding",
                                                                    "path": "report/report.md"}
    assert out["shapes"] == ["1x128", "8x128"] and out["sts_sets"] == ["eval", "test"]
    rows = {r["name"]: r for r in out["rows"]}
    assert [r["name"] for r in out["rows"]] == ["teacher", "student", "student-onnx", "student-int8"]
    assert rows["teacher"]["speedup_p50"] == {"1x128": 1.0, "8x128": 1.0}
    assert rows["student"]["speedup_p50"]["1x128"] == pytest.approx(2.0)
    assert rows["student-onnx"]["speedup_p50"]["8x128"] == pytest.approx(160 / 64)
    assert rows["student"]["size_ratio"] == pytest.approx(0.5)
    assert rows["student-int8"]["size_ratio"] == pytest.approx(11 / 86)
    assert rows["student-int8"]["latency"] == {}
    assert rows["student-int8"]["speedup_p50"] == {"1x128": None, "8x128": None}
    assert rows["student-onnx"]["latency"]["1x128"]["throughput_per_s"] == pytest.approx(125.0)


def test_report_markdown(run_dir: Path) -> None:
    write_report(run_dir)
    md = (run_dir / "report" / "report.md").read_text()
    assert "Test CPU" in md and "![quality vs latency](report.png)" in md
    lines = [line for line in md.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 4
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[:6] == ["artifact", "backend", "params (M)", "size MB", "size vs teacher", "fidelity"]
    assert "speed-up 8x128" in head and "STS test" in head
    student = dict(zip(head, (c.strip() for c in lines[3].strip("|").split("|")), strict=True))
    assert student["params (M)"] == "22.70" and student["size vs teacher"] == "0.50×"
    assert student["p50 ms 1x128"] == "10.00" and student["speed-up 1x128"] == "2.00×"
    assert student["STS test"] == "80.50"
    int8 = dict(zip(head, (c.strip() for c in lines[5].strip("|").split("|")), strict=True))
    assert int8["params (M)"] == "—" and int8["p50 ms 1x128"] == "—" and int8["STS eval"] == "84.10"


def test_report_png_and_rich_table(run_dir: Path) -> None:
    out = write_report(run_dir)
    assert (run_dir / "report" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = Console(record=True, width=300)
    print_table(out, console)
    assert "student-onnx" in console.export_text()


def test_markdown_table_from_rows_alone() -> None:
    rows = [{"name": "a", "latency": {"1x8": {"p50_ms": 1.5}}, "sts_test_spearman": 80.0}]
    table = markdown_table(rows)
    assert "p50 ms 1x8" in table and "STS test" in table and "| a | — |" in table


def test_missing_inputs_name_the_stage(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run the evaluate and/or bench stage first"):
        write_report(tmp_path)
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.json").write_text("{broken")
    with pytest.raises(InputError, match="re-run the bench stage"):
        write_report(tmp_path)


def test_bench_only_report(run_dir: Path) -> None:
    (run_dir / "evaluate" / "metrics.json").unlink()
    out = write_report(run_dir)
    assert out["missing_stages"] == ["evaluate"]
    assert [r["name"] for r in out["rows"]] == ["teacher", "student", "student-onnx"]
    student = out["rows"][1]
    assert student.get("fidelity_cosine") is None and student["speedup_p50"]["1x128"] == pytest.approx(2.0)
    assert out["rows"][1]["size_ratio"] == pytest.approx(1.0)  # file_mb falls back to the bench rows
    assert "evaluate stage has not run" in (run_dir / "report" / "report.md").read_text()


def demo_like(report: dict, shapes: list[str]) -> dict:
    """The fixture's report with the demo's longest artifact name and ``shapes`` (each as the fixture's 1x128)."""
    report = {**report, "shapes": shapes, "rows": [dict(r) for r in report["rows"]]}
    report["rows"][-1]["name"] = "student-dynamic-int8"
    for row in report["rows"]:
        row["latency"] = {s: row["latency"]["1x128"] for s in shapes} if row["latency"] else {}
        row["speedup_p50"] = {s: row["speedup_p50"]["1x128"] for s in shapes}
    return report


@pytest.mark.parametrize("shapes", [["1x128", "32x128"], ["1x128", "8x128", "32x128", "8x512"]])
def test_terminal_table_fits_80_columns_without_cutting_cells(run_dir: Path, shapes: list[str]) -> None:
    report = demo_like(write_report(run_dir), shapes)
    console = Console(record=True, width=80)
    print_table(report, console)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    student = [line.split() for line in text.splitlines() if line.startswith("student ")]
    assert student[0][:6] == ["student", "43.0", "0.9800", "85.00", "80.50", "10.00"]  # size, quality, p50 1x128
    assert sum(line.count("2.00×") for line in text.splitlines() if line.startswith("student ")) == len(shapes)
    for shape in shapes:
        assert shape in text
    assert "student-dynamic-int8" in text and "p99" not in text  # the full table is in report.md


def test_report_command_is_readable_when_piped(run_dir: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([sys.executable, "-m", "edgedistill", "report", str(run_dir)], capture_output=True,
                          text=True, env=env, check=True)
    lines = done.stdout.splitlines()
    assert "…" not in done.stdout and "\x1b[" not in done.stdout and max(map(len, lines)) <= 80
    assert any(line.split()[:2] == ["student-onnx", "43.0"] for line in lines if line.strip())


def test_report_is_a_stage_redone_only_when_its_inputs_change(run_dir: Path) -> None:
    from edgedistill.artifacts import atomic_write_json

    first = write_report(run_dir)
    recorded = read_json(run_dir / "manifest.json")["stages"]["report"]
    assert write_report(run_dir) == first and read_json(run_dir / "manifest.json")["stages"]["report"] == recorded
    results = read_json(run_dir / "bench" / "results.json")
    row = next(r for r in results["results"] if r["artifact"] == "student" and r["shape"] == "1x128")
    row["p50_ms"] *= 2
    atomic_write_json(run_dir / "bench" / "results.json", results)
    student = next(r for r in write_report(run_dir)["rows"] if r["name"] == "student")
    assert student["speedup_p50"]["1x128"] == pytest.approx(1.0)  # was 2.0: the report was made again
