"""The ledger: for every artifact, its size, speed and quality, and the ratios against the teacher.

``run(run_dir)`` reads ``evaluate/metrics.json`` and ``bench/results.json`` and writes ``report.md``,
``report.json``, ``report.png`` and a self-contained ``report.html`` (plots inlined) into ``run_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.artifacts import MANIFEST, atomic_write_json, atomic_write_text, read_manifest
from edgedistill.report.html import html_report
from edgedistill.report.ledger import build_report, load_inputs
from edgedistill.report.render import markdown_report, markdown_table, print_table, write_plot

__all__ = ["build_report", "html_report", "markdown_table", "print_table", "run"]


def distill_summary(run_dir: Path) -> dict[str, Any] | None:
    """What the distill stage chose and why (from the manifest), or None if it did not run here."""
    stage = read_manifest(run_dir)["stages"].get("distill") if (run_dir / MANIFEST).is_file() else None
    if not stage:
        return None
    keys = ("selected", "selection_metric", "selection_scores", "train_texts", "loss_first", "loss_last")
    return {k: stage["metrics"][k] for k in keys if k in stage["metrics"]}


def run(run_dir: Path) -> dict[str, Any]:
    """Build the report for ``run_dir`` and write report.md, report.json, report.png and report.html there.

    Returns:
        The report dict written to report.json (see :func:`build_report`).
    Raises:
        InputError: evaluation or benchmark results are missing or unreadable (names the stage to run).
    """
    metrics, bench = load_inputs(run_dir)
    report = build_report(metrics, bench)
    report["distill"] = distill_summary(run_dir)
    write_plot(report, run_dir / "report.png")
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", markdown_report(report, image="report.png"))
    atomic_write_text(run_dir / "report.html", html_report(report))
    return report
