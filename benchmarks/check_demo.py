"""Check the walking skeleton's targets on a finished demo run, from its measured ledger.

    python benchmarks/check_demo.py [RUN_DIR] [--wall-s SECONDS]      RUN_DIR: default runs/minilm-cpu (`make demo`)

All latencies come from the run's bench stage, where every artifact was timed in the same process run,
on the same inputs and thread count — ratios are side by side, never across days. Prints one line per target
and exits 1 if any is missed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from options import add_run

TARGETS = {
    "speedup_int8_vs_teacher_1x128": 3.0,  # final INT8 student (ORT) vs teacher (torch), p50 at batch 1 x 128
    "sts_test_int8": 80.0,  # STS-B test Spearman of the final INT8 student
    "demo_minutes": 15.0,  # make demo after set-up
}


def row(report: dict[str, Any], name: str) -> dict[str, Any]:
    found = [r for r in report["rows"] if r["name"] == name]
    if not found:
        raise SystemExit(f"{name} not in report.json")
    return found[0]


def measured(run_dir: Path, wall_s: float | None) -> dict[str, float | None]:
    report = json.loads((run_dir / "report" / "report.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    int8 = next(r for r in report["rows"] if r["name"].endswith("int8"))
    teacher = row(report, "teacher")
    stages_s = sum(s["wall_s"] for s in manifest["stages"].values())
    return {
        "speedup_int8_vs_teacher_1x128": teacher["latency"]["1x128"]["p50_ms"] / int8["latency"]["1x128"]["p50_ms"],
        "sts_test_int8": int8.get("sts_test_spearman"),
        "sts_test_teacher": teacher.get("sts_test_spearman"),
        "sts_test_untrained": row(report, "student-untrained").get("sts_test_spearman"),
        "sts_test_distilled": row(report, "student").get("sts_test_spearman"),
        "demo_minutes": (wall_s if wall_s is not None else stages_s) / 60,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run(parser, positional=True)
    parser.add_argument("--wall-s", type=float, help="measured wall time of `make demo` (default: sum of stages)")
    args = parser.parse_args()
    values = measured(args.run_dir, args.wall_s)
    failed = 0
    for name, value in values.items():
        target = TARGETS.get(name)
        if target is None:
            print(f"  {name:32s} {value:8.2f}")
            continue
        ok = value is not None and (value <= target if name == "demo_minutes" else value >= target)
        failed += not ok
        bound = "<=" if name == "demo_minutes" else ">="
        print(f"{'PASS' if ok else 'FAIL'} {name:32s} {value:8.2f}  (target {bound} {target})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
