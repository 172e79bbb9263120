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


def stage_metrics(run_dir: Path, stage: str) -> dict[str, Any] | None:
    """A stage's recorded metrics (from the manifest), or None if it did not run here."""
    entry = read_manifest(run_dir)["stages"].get(stage) if (run_dir / MANIFEST).is_file() else None
    return entry["metrics"] if entry else None


def distill_summary(run_dir: Path) -> dict[str, Any] | None:
    """What the distill stage chose and why, or None if it did not run here."""
    metrics = stage_metrics(run_dir, "distill")
    keys = ("selected", "selection_metric", "selection_scores", "train_texts", "loss_first", "loss_last")
    return {k: metrics[k] for k in keys if k in metrics} if metrics else None


def fusion_summary(run_dir: Path) -> dict[str, Any] | None:
    """The fused artifact and how many attention blocks were fused (with the reasons for those that were not)."""
    metrics = stage_metrics(run_dir, "fuse")
    if not metrics or not metrics.get("attention"):
        return None
    attention = metrics["attention"]
    return {"artifact": metrics["artifacts"][0]["name"], "found": attention["found"], "fused": attention["fused"],
            "skipped": [s["reason"] for s in attention.get("skipped", [])]}


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
    report["fusion"] = fusion_summary(run_dir)
    write_plot(report, run_dir / "report.png")
    atomic_write_json(run_dir / "report.json", report)
    atomic_write_text(run_dir / "report.md", markdown_report(report, image="report.png"))
    atomic_write_text(run_dir / "report.html", html_report(report))
    return report
