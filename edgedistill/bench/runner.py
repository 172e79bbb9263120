"""Time every artifact on every backend that can run it, on the same inputs and thread count.

Warm-up calls are run and discarded; then each shape is timed call by call with ``time.perf_counter``
for at least ``iterations`` calls and ``min_duration_s`` seconds.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.bench.env import bench_env
from edgedistill.bench.inputs import make_feeds
from edgedistill.bench.memory import peak_rss_mb, reset_peak_rss
from edgedistill.bench.stats import latency_stats
from edgedistill.config import BenchConfig, Shape
from edgedistill.engines.base import BACKEND_FOR_KIND, Session, open_session
from edgedistill.engines.size import model_file_mb
from edgedistill.engines.tokenizer import load_tokenizer
from edgedistill.errors import InputError

SCHEMA = 1
CV_WARN = 0.1
RESULTS = "results.json"


def time_calls(session: Session, feeds: dict[str, np.ndarray], iterations: int, min_duration_s: float) -> list[float]:
    """Seconds per ``session.run`` call: at least ``iterations`` calls, continuing until ``min_duration_s``."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iterations or time.perf_counter() - start < min_duration_s:
        t0 = time.perf_counter()
        session.run(feeds)
        times.append(time.perf_counter() - t0)
    return times


def bench_shape(session: Session, shape: Shape, feeds: dict[str, np.ndarray], warmup: int, iterations: int,
                min_duration_s: float) -> dict[str, Any]:
    """One result row (without artifact fields) for one shape."""
    check = getattr(session, "check_feeds", None)
    if check is not None:
        check(feeds)  # a shape outside an ONNX model's fixed dims fails here with a clear InputError
    reset_peak_rss()
    for _ in range(warmup):
        session.run(feeds)
    times = time_calls(session, feeds, iterations, min_duration_s)
    stats = latency_stats(times)
    return {
        "shape": shape.label, "batch": shape.batch, "seq": shape.seq, **stats,
        "throughput_per_s": shape.batch / (stats["mean_ms"] / 1000.0),
        "iterations": len(times),
        "peak_rss_mb": peak_rss_mb(),
    }


def bench_session(session: Session, shapes: list[Shape], warmup: int, iterations: int, min_duration_s: float, *,
                  vocab_size: int, seed: int = 0, on_shape: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Benchmark ``session`` at each shape on the inputs ``make_feeds(shape, vocab_size, seed)``.

    Returns:
        One row per shape: shape, batch, seq, p50/p90/p95/p99/mean/std/min/max ``_ms``, cv,
        throughput_per_s (samples/s = batch / mean latency), iterations, peak_rss_mb.
    Raises:
        InputError: a shape the model cannot take.
    """
    rows = []
    for shape in shapes:
        feeds = make_feeds(shape, vocab_size, seed)
        rows.append(bench_shape(session, shape, feeds, warmup, iterations, min_duration_s))
        if on_shape is not None:
            on_shape()
    return rows


def plan(cfg: BenchConfig, artifacts: list[Artifact]) -> list[tuple[Artifact, str]]:
    """(artifact, backend) pairs to run: each backend in ``cfg.backends`` that can run the artifact's kind.

    Raises:
        InputError: nothing to run.
    """
    pairs: list[tuple[Artifact, str]] = [
        (a, b) for a in artifacts for b in cfg.backends if BACKEND_FOR_KIND.get(a.kind) == b
    ]
    if not pairs:
        kinds = ", ".join(sorted({a.kind for a in artifacts})) or "none"
        raise InputError(f"no artifact can run on backends {list(cfg.backends)} (artifact kinds: {kinds}); "
                         "add 'torch' for hf models or 'onnxruntime' for onnx models to bench.backends")
    return pairs


def shared_vocab_size(artifacts: list[Artifact]) -> int:
    """Smallest vocabulary among the artifacts, so every model gets the very same token ids."""
    return min(len(load_tokenizer(a)) for a in artifacts)


def warn_noisy(rows: list[dict[str, Any]], console: Console) -> None:
    for row in rows:
        if row["cv"] > CV_WARN:
            console.print(f"[yellow]warning:[/] {row['artifact']} ({row['backend']}) at {row['shape']}: latency varies "
                          f"by {row['cv']:.0%} of the mean; close other programs or raise bench.iterations")


def bench_artifact(artifact: Artifact, backend: str, cfg: BenchConfig, threads: int, vocab_size: int,
                   on_shape: Callable[[], None]) -> list[dict[str, Any]]:
    """Load ``artifact`` on ``backend`` (timed) and benchmark it at every shape."""
    t0 = time.perf_counter()
    session = open_session(artifact, backend, threads)
    load_s = time.perf_counter() - t0
    rows = bench_session(session, list(cfg.shapes), cfg.warmup, cfg.iterations, cfg.min_duration_s,
                         vocab_size=vocab_size, on_shape=on_shape)
    del session
    gc.collect()
    extra = {"artifact": artifact.name, "backend": backend, "load_s": load_s, "file_mb": model_file_mb(artifact)}
    return [{**extra, **row} for row in rows]


def run(cfg: BenchConfig, artifacts: list[Artifact], out: Path) -> dict[str, Any]:
    """Benchmark every artifact on every fitting backend in ``cfg.backends``; write ``out/results.json``.

    Returns:
        ``{"schema": 1, "env": {...}, "results": [row, ...]}`` as written; each row is a
        :func:`bench_session` row plus artifact, backend, load_s and file_mb.
    Raises:
        InputError: no artifact fits the backends, a tokenizer is missing, or a shape does not fit a model.
    """
    threads = cfg.threads or os.cpu_count() or 1
    pairs = plan(cfg, artifacts)
    vocab_size = shared_vocab_size([a for a, _ in pairs])
    console = Console(stderr=True)
    rows: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("bench", total=len(pairs) * len(cfg.shapes))
        for artifact, backend in pairs:
            progress.update(task, description=f"bench {artifact.name} ({backend})")
            rows += bench_artifact(artifact, backend, cfg, threads, vocab_size, lambda: progress.advance(task))
    warn_noisy(rows, console)
    results = {"schema": SCHEMA, "env": bench_env(threads, reset_peak_rss()), "results": rows}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / RESULTS, results)
    return results
