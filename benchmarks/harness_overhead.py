"""Harness overhead: the p50 the bench harness reports for a one-Add ONNX model vs a bare ``session.run`` loop.

    .venv/bin/python benchmarks/harness_overhead.py [--calls 20000] [--rounds 20] [--label NAME] [--out FILE]

Both sides use ``time.perf_counter`` and run interleaved in one process (rounds of harness/bare), so
machine drift cancels. Target: |harness p50 - bare p50| <= 20 µs. The p50s are written as a results document,
benchmarks/results/<date>-<label>-<device>.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from options import add_out, area_of, save_results

from edgedistill.bench.interleave import interleaved
from edgedistill.bench.probe import Probe, warm_up
from edgedistill.engines.ort_session import OrtSession

AREA = area_of(__file__)
TARGET_US = 20.0


def add_model(path: Path) -> Path:
    """A model with one node: y = x + x, float32 (1, 16)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "add", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def bare_session(path: Path) -> Any:
    """A plain ONNX Runtime session, one thread, as a user would write it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000, help="timed calls per side")
    parser.add_argument("--rounds", type=int, default=20)
    add_out(parser, AREA, "harness-overhead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = add_model(Path(tmp) / "add.onnx")
        feeds = {"x": np.ones((1, 16), dtype=np.float32)}
        harness = Probe(OrtSession(path, threads=1), feeds)  # the bench's own timed call
        run = bare_session(path).run

        def bare() -> float:
            t0 = time.perf_counter()
            run(None, feeds)
            return time.perf_counter() - t0

        for probe in (harness, bare):
            warm_up(probe, 1000, 0.2)
        samples = interleaved([harness, bare], args.calls, args.rounds)
    p50 = [float(np.median([t for r in s for t in r])) * 1e6 for s in samples]
    diff = p50[0] - p50[1]
    print(f"harness p50 {p50[0]:.2f} µs, bare session.run p50 {p50[1]:.2f} µs, difference {diff:+.2f} µs "
          f"({args.calls} calls each, {args.rounds} interleaved rounds, 1 thread)")
    ok = abs(diff) <= TARGET_US
    print(f"{'PASS' if ok else 'FAIL'} harness overhead within {TARGET_US:.0f} µs")
    save_results(args, "harness-overhead", {
        "model": "one Add, float32 (1, 16)", "calls": args.calls, "rounds": args.rounds, "threads": 1,
        "harness_p50_us": p50[0], "bare_p50_us": p50[1], "difference_us": diff, "target_us": TARGET_US,
        "passed": ok}, threads=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
