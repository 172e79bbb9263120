"""Median ONNX Runtime CPU latency of several models, timed interleaved in one process.

Each round runs every model a few times, in alternating order, so a neighbour's job or frequency
scaling lands on all of them alike; the figure per model is the median over all its calls.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx

from edgedistill.tasks import spec_of_onnx, synthetic_feeds


def median_latency_ms(paths: list[Path], batch: int = 1, seq: int = 128, rounds: int = 10, per_round: int = 3,
                      warmup: int = 3, threads: int | None = None) -> list[float]:
    """Median milliseconds per call of each model at (batch, seq), interleaved."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in paths]
    spec = spec_of_onnx(onnx.load(str(paths[0]), load_external_data=False))
    feeds = synthetic_feeds(spec, batch, None if spec.is_image else seq)
    for s in sessions:
        for _ in range(warmup):
            s.run(None, feeds)
    samples: list[list[float]] = [[] for _ in paths]
    for r in range(rounds):
        order = range(len(paths)) if r % 2 == 0 else reversed(range(len(paths)))
        for i in order:
            for _ in range(per_round):
                start = time.perf_counter()
                sessions[i].run(None, feeds)
                samples[i].append((time.perf_counter() - start) * 1000)
    return [float(np.median(s)) for s in samples]
