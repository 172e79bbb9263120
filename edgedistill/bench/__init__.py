"""Latency, throughput, memory, size and (on Jetson) energy of every artifact, measured the same way
for every backend.

``run(cfg, artifacts, out)`` writes ``out/results.json`` (:mod:`edgedistill.bench.stage`); ``benchmark(cfg, artifacts)``
measures and returns the results document (:mod:`edgedistill.bench.runner`).
``compare(a, b)`` gives the ratio table of two results files; see :mod:`edgedistill.bench.compare`.
The names below load on first use, so the light modules here (``env``, ``document``, ``schema``) import alone.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

EXPORTS = {"SCHEMA": "runner", "bench_session": "runner", "run": "stage", "benchmark": "runner", "make_feeds": "inputs",
           "latency_stats": "stats", "ratio_with_spread": "stats"}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name in EXPORTS:
        return getattr(import_module(f"edgedistill.bench.{EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edgedistill.bench' has no attribute {name!r}")
