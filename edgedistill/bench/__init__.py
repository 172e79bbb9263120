"""Latency, throughput, memory and size of every artifact, measured the same way for every backend.

``run(cfg, artifacts, out)`` writes ``out/results.json``; see :mod:`edgedistill.bench.runner`.
"""

from edgedistill.bench.inputs import make_feeds
from edgedistill.bench.runner import bench_session, run
from edgedistill.bench.stats import latency_stats

__all__ = ["bench_session", "latency_stats", "make_feeds", "run"]
