"""Latency, throughput, memory, size and (on Jetson) energy of every artifact, measured the same way
for every backend.

``run(cfg, artifacts, out)`` writes ``out/results.json``; see :mod:`edgedistill.bench.runner`.
``compare(a, b)`` gives the ratio table of two results files; see :mod:`edgedistill.bench.compare`.
"""

from edgedistill.bench.inputs import make_feeds
from edgedistill.bench.runner import SCHEMA, bench_session, run
from edgedistill.bench.stats import latency_stats, ratio_with_spread

__all__ = ["SCHEMA", "bench_session", "latency_stats", "make_feeds", "ratio_with_spread", "run"]
