"""The ledger: for every artifact, its size, speed and quality, and the ratios against the teacher.

``run(run_dir, out)`` (:mod:`edgedistill.report.stage`) reads ``evaluate/metrics.json`` and ``bench/results.json``
of ``run_dir`` and writes ``report.md``, ``report.json``, ``report.png`` and a self-contained ``report.html``
(plots inlined) into ``out`` — ``run_dir/report/`` in a run.
"""

from __future__ import annotations

from edgedistill.report.html import html_report
from edgedistill.report.ledger import build_report
from edgedistill.report.render import markdown_table, print_table
from edgedistill.report.stage import run

__all__ = ["build_report", "html_report", "markdown_table", "print_table", "run"]
