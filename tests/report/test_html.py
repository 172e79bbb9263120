"""The self-contained HTML report: tables and inline plots, rendered by headless Chromium (screenshot kept)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgedistill.api import report as write_report
from edgedistill.artifacts import atomic_write_json, read_json
from edgedistill.report.plots import pareto_front

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
COMPARISONS = [{"shape": "1x128", "baseline": "teacher", "contender": "student", "metric": "p50_ms", "speedup": 2.0,
                "ci_low": 1.9, "ci_high": 2.1, "round_p25": 1.95, "round_p75": 2.05, "rounds": 10}]


@pytest.fixture
def html_run(run_dir: Path) -> Path:
    results = read_json(run_dir / "bench" / "results.json")
    results["comparisons"] = COMPARISONS
    results["results"][0]["power"] = {"mj_per_inference": 12.5}
    atomic_write_json(run_dir / "bench" / "results.json", results)
    write_report(run_dir)
    return run_dir / "report" / "report.html"


def test_html_is_self_contained(html_run: Path) -> None:
    page = html_run.read_text()
    assert 'id="ledger"' in page and 'id="comparisons"' in page and 'id="energy"' in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network
    assert "1.90–2.10" in page and "12.50" in page


def test_markdown_lists_interleaved_speedups(html_run: Path) -> None:
    md = (html_run.parent / "report.md").read_text()
    assert "| student | teacher | 1x128 | 2.00× | 1.90–2.10 | 1.95–2.05 | 10 |" in md
    report = read_json(html_run.parent / "report.json")
    student = next(r for r in report["rows"] if r["name"] == "student")
    assert student["speedup_ci"] == {"1x128": [1.9, 2.1]}


def test_pareto_front() -> None:
    points = [("teacher", 20.0, 82.0), ("student", 10.0, 80.5), ("slow-bad", 15.0, 79.0), ("int8", 5.0, 80.0)]
    assert [p[0] for p in pareto_front(points)] == ["int8", "student", "teacher"]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install -y chromium)")
def test_chromium_renders_table_and_plots(html_run: Path, tmp_path: Path) -> None:
    flags = [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}"]
    script = ("<script>window.onload=()=>{const imgs=[...document.images];document.body.dataset.check="
              "imgs.length+':'+imgs.filter(i=>i.complete&&i.naturalWidth>0).length+':'"
              "+document.querySelectorAll('#ledger tbody tr').length;}</script>")
    probe = tmp_path / "probe.html"
    probe.write_text(html_run.read_text().replace("</body>", script + "</body>"))
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert 'data-check="3:3:4"' in dom  # 3 plots decoded with a real width; 4 ledger rows
    shot = html_run.parent / "report-screenshot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1400,2000", html_run.as_uri()],
                   capture_output=True, timeout=60, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
