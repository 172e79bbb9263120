"""The report stage: the ledger of a run directory — every artifact's size, speed and quality, and the ratios
against the teacher — from ``evaluate/metrics.json`` and ``bench/results.json``, into ``out/report.md`` (+
``report.json``, ``report.png`` and a self-contained ``report.html``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.artifacts import MANIFEST, Artifact, atomic_write_json, atomic_write_text, read_manifest
from edgedistill.config.base import DEFAULT_TASK
from edgedistill.report.html import html_report
from edgedistill.report.ledger import METRICS, RESULTS, build_report, load_inputs
from edgedistill.report.render import markdown_report, write_plot

REPORT = "report.md"
FILES = (REPORT, "report.json", "report.png", "report.html")


def stage_metrics(run_dir: Path, stage: str) -> dict[str, Any] | None:
    """A stage's recorded metrics (from the manifest), or None if it did not run here."""
    entry = read_manifest(run_dir)["stages"].get(stage) if (run_dir / MANIFEST).is_file() else None
    return entry["metrics"] if entry else None


def distill_summary(run_dir: Path) -> dict[str, Any] | None:
    """What the distill stage chose and why, or None if it did not run here."""
    metrics = stage_metrics(run_dir, "distill")
    keys = ("selected", "selection_metric", "selection_scores", "train_texts", "train_sequences", "loss_first",
            "loss_last", "notes", "teacher_usage", "cache_bytes_per_token", "student_layers",
            "student_non_embedding_params", "teacher_non_embedding_params")
    return {k: metrics[k] for k in keys if k in metrics} if metrics else None


def fusion_summary(run_dir: Path) -> dict[str, Any] | None:
    """The fused artifact and how many attention blocks were fused (with the reasons for those that were not)."""
    metrics = stage_metrics(run_dir, "fuse")
    if not metrics or not metrics.get("attention"):
        return None
    attention = metrics["attention"]
    return {"artifact": metrics["artifacts"][0]["name"], "found": attention["found"], "fused": attention["fused"],
            "skipped": [s["reason"] for s in attention.get("skipped", [])]}


def search_summary(run_dir: Path) -> dict[str, Any] | None:
    """The student search's choice and why (``search/chosen.json``), with how many candidates it looked at."""
    from edgedistill.artifacts import read_json

    chosen, records = run_dir / "search" / "chosen.json", run_dir / "search" / "records.json"
    if not chosen.is_file():
        return None
    found: dict[str, Any] = read_json(chosen)
    cands = read_json(records)["candidates"] if records.is_file() else {}
    archs = read_json(records)["architectures"] if records.is_file() else {}
    return found | {"candidates": len(cands), "shipped": sum("final" in c for c in cands.values()),
                    "finalists": sum("full_distill_s" in a for a in archs.values())}


def report_inputs(run_dir: Path) -> dict[str, Path]:
    """The results files the report is made from (those that exist): a new one redoes the report."""
    return {name: run_dir / rel for name, rel in (("metrics", METRICS), ("bench", RESULTS),
                                                  ("search", "search/chosen.json")) if (run_dir / rel).is_file()}


def run(run_dir: Path, out: Path) -> Artifact:
    """Build the report of ``run_dir`` and write report.md, report.json, report.png and report.html into ``out``.

    Returns:
        The report artifact (``out/report.md``); ``report.json`` beside it holds the report dict (see
        :func:`build_report`).
    Raises:
        InputError: evaluation or benchmark results are missing or unreadable (names the stage to run).
    """
    metrics, bench = load_inputs(run_dir)
    report = build_report(metrics, bench)
    report["distill"] = distill_summary(run_dir)
    report["task"] = metrics.get("task")
    report["fusion"] = fusion_summary(run_dir)
    report["search"] = search_summary(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_plot(report, out / "report.png")
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / REPORT, markdown_report(report, image="report.png"))
    atomic_write_text(out / "report.html", html_report(report))
    task = metrics.get("task") or DEFAULT_TASK
    return Artifact("report", "report", out / REPORT, task, {"rows": len(report["rows"])})
