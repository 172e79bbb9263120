"""Stability: two consecutive ``bench`` runs of the demo student ONNX agree on p50 within 5%.

    .venv/bin/python benchmarks/stability.py [MODEL.onnx] [--suite stability] [--label stability] [--out FILE]

Runs the real bench stage twice (fresh session each time, suite settings) and compares the p50s.
Meaningful on an idle machine; the 1-minute load average is printed with the result. MODEL.onnx defaults to the
demo run's export (runs/minilm-cpu/export/model.onnx, `make demo`); the p50s are written as a results document,
benchmarks/results/<date>-<label>-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from options import DEMO_RUN, add_out, add_suite, area_of, save_results, shown
from suite import load_suite

from edgedistill.artifacts import Artifact
from edgedistill.bench import benchmark

AREA = area_of(__file__)
DEFAULT_MODEL = DEMO_RUN / "export" / "model.onnx"
TARGET = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL,
                        help=f"student ONNX file (default: {shown(DEFAULT_MODEL)})")
    add_suite(parser, "stability")
    add_out(parser, AREA, "stability")
    args = parser.parse_args()
    _, cfg = load_suite(args.suite)
    artifact = Artifact("student-onnx", "onnx", args.model)
    p50s, runs = [], []
    for i in range(2):
        results = benchmark(cfg, [artifact])  # type: ignore[arg-type]
        p50s += [{r["shape"]: r["p50_ms"] for r in results["results"]}]
        row = results["results"][0]
        load = os.getloadavg()[0]
        runs.append({"p50_ms": p50s[-1], "cv": row["cv"], "iterations": row["iterations"], "load_avg_1m": load})
        env = results["env"]  # the bench's fingerprint, with its thread settings
        print(f"run {i + 1}: " + ", ".join(f"{s} p50 {v:.3f} ms" for s, v in p50s[-1].items())
              + f" (cv {row['cv']:.1%}, {row['iterations']} calls, load avg {load:.2f})")
    worst = max(abs(p50s[1][s] / p50s[0][s] - 1) for s in p50s[0])
    ok = worst <= TARGET
    print(f"{'PASS' if ok else 'FAIL'} p50 differs by {worst:.2%} between runs (target <= {TARGET:.0%})")
    save_results(args, "stability", {"model": shown(args.model), "suite": args.suite, "runs": runs,
                                     "p50_difference": worst, "target": TARGET, "passed": ok,
                                     "env": env})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
