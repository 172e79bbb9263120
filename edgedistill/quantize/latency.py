"""Median ONNX Runtime CPU latency of several models, timed interleaved in one process (the bench's own
interleaving, :func:`edgedistill.bench.interleave.interleaved_ms`), for the budget search's speed column."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import onnx

from edgedistill.bench.interleave import interleaved_ms
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
    calls: dict[str, Callable[[], object]] = {str(i): partial(s.run, None, feeds) for i, s in enumerate(sessions)}
    samples = interleaved_ms(calls, rounds, per_round, round_warmup=0)
    return [float(np.median(samples[str(i)])) for i in range(len(sessions))]
