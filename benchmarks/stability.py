"""Stability: two consecutive ``bench`` runs of the demo student ONNX agree on p50 within 5%.

    .venv/bin/python benchmarks/stability.py [MODEL.onnx] [--suite stability]

Runs the real bench stage twice (fresh session each time, suite settings) and compares the p50s.
Meaningful on an idle machine; the 1-minute load average is printed with the result.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from suite import load_suite

from edgedistill.artifacts import Artifact
from edgedistill.bench import run

DEFAULT_MODEL = Path("/tmp/run1/export/model.onnx")
TARGET = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--suite", default="stability")
    args = parser.parse_args()
    _, cfg = load_suite(args.suite)
    artifact = Artifact("student-onnx", "onnx", args.model)
    p50s = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):
            results = run(cfg, [artifact], Path(tmp) / f"run{i}")  # type: ignore[arg-type]
            p50s += [{r["shape"]: r["p50_ms"] for r in results["results"]}]
            row = results["results"][0]
            print(f"run {i + 1}: " + ", ".join(f"{s} p50 {v:.3f} ms" for s, v in p50s[-1].items())
                  + f" (cv {row['cv']:.1%}, {row['iterations']} calls, load avg {os.getloadavg()[0]:.2f})")
    worst = max(abs(p50s[1][s] / p50s[0][s] - 1) for s in p50s[0])
    ok = worst <= TARGET
    print(f"{'PASS' if ok else 'FAIL'} p50 differs by {worst:.2%} between runs (target <= {TARGET:.0%})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
