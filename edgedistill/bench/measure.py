"""Measure one shape: sequentially for one session, or interleaved across several (A B A B …).

Each produces result rows (stats, throughput, first call, memory, copy times) and, when interleaved,
comparisons: the baseline's median over each contender's, with a bootstrap interval and per-round IQR.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgedistill.bench.interleave import interleaved
from edgedistill.bench.memory import gpu_peak_mb, peak_rss_mb, reset_gpu_peak, reset_peak_rss
from edgedistill.bench.probe import Probe, RotatingProbe, time_calls, warm_up
from edgedistill.bench.settings import BenchSettings
from edgedistill.bench.stats import latency_stats, ratio_with_spread
from edgedistill.config import Shape


@dataclass
class Contender:
    """A loaded session and what was measured when loading it."""

    name: str
    artifact: str
    backend: str
    session: Any
    load_s: float
    load_rss_mb: float
    file_mb: float
    cold_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    replicas: list[Any] = field(default_factory=list)  # more fresh sessions of the same model, timed in turn


def check_shape(session: Any, feeds: dict[str, np.ndarray]) -> None:
    check = getattr(session, "check_feeds", None)
    if check is not None:
        check(feeds)  # a shape outside an ONNX model's fixed dims fails here with a clear InputError


def first_call_ms(probe: Probe) -> float:
    """The first call at a shape, timed alone: allocation and kernel selection for this shape happen here."""
    return probe() * 1000.0


def row_for(shape: Shape, times: list[float], probe: Probe | RotatingProbe, first_ms: float,
            warmups: int) -> dict[str, Any]:
    """One result row (without artifact fields) from a shape's samples."""
    stats = latency_stats(times)
    row: dict[str, Any] = {"shape": shape.label, "batch": shape.batch, "seq": shape.seq, **stats,
                           "throughput_per_s": shape.batch / (stats["mean_ms"] / 1000.0),
                           "iterations": len(times), "warmup_calls": warmups, "first_ms": first_ms,
                           "timer": probe.timer}
    if probe.parts["h2d_s"]:
        row["h2d_ms"] = float(np.median(probe.parts["h2d_s"])) * 1000.0
        row["d2h_ms"] = float(np.median(probe.parts["d2h_s"])) * 1000.0
    return row


def prepare(session: Any, shape: Shape, feeds: dict[str, np.ndarray], settings: BenchSettings,
            replicas: Sequence[Any] = ()) -> tuple[Probe | RotatingProbe, float, int]:
    """(probe, first call ms, warm-up calls made) for one session (and its replicas) at one shape.

    With replicas the probe calls the sessions in turn and the first call is the main session's.
    """
    check_shape(session, feeds)
    probe = Probe(session, feeds, split_copies=True)
    first = first_call_ms(probe)
    if replicas:
        extra = [Probe(r, feeds, split_copies=True) for r in replicas]
        for p in extra:
            first_call_ms(p)  # their first calls are not steady state either
        rotating = RotatingProbe([probe, *extra])
        return rotating, first, warm_up(rotating, settings.warmup * len(rotating.probes), settings.warmup_s)
    warmups = warm_up(probe, settings.warmup, settings.warmup_s)
    return probe, first, warmups


def measure_sequential(session: Any, shape: Shape, feeds: dict[str, np.ndarray],
                       settings: BenchSettings, replicas: Sequence[Any] = ()) -> dict[str, Any]:
    """Warm up, then time ``session`` (and its replicas, in turn) alone at ``shape``; peak RSS is this session's."""
    reset_peak_rss()
    reset_gpu_peak(session)
    probe, first, warmups = prepare(session, shape, feeds, settings, replicas)
    times = time_calls(probe, settings.iterations, settings.min_duration_s)
    row = row_for(shape, times, probe, first, warmups)
    row.update(peak_rss_mb=peak_rss_mb(), gpu_peak_mb=gpu_peak_mb(session), mode="sequential",
               sessions=1 + len(replicas))
    return row


def measure_interleaved(contenders: list[Contender], shape: Shape, feeds: dict[str, np.ndarray],
                        settings: BenchSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Warm every contender up, then time them interleaved in rounds.

    Returns:
        (rows, one per contender; comparisons of contender 0, the baseline, with each other one at this
        shape: ``speedup`` = baseline median / contender median, with ``ci_low/ci_high`` and
        ``round_p25/round_p75``). ``peak_rss_mb`` is the process peak with all contenders loaded.
    """
    reset_peak_rss()
    prepared = [prepare(c.session, shape, feeds, settings, c.replicas) for c in contenders]
    probes = [p for p, _, _ in prepared]
    samples = interleaved(probes, settings.iterations, settings.rounds, settings.min_duration_s,
                          settings.round_warmup)
    peak = peak_rss_mb()
    rows = []
    for c, (probe, first, warmups), rounds in zip(contenders, prepared, samples, strict=True):
        row = row_for(shape, [t for r in rounds for t in r], probe, first, warmups)
        row.update(peak_rss_mb=peak, gpu_peak_mb=gpu_peak_mb(c.session), mode="interleaved", rounds=len(rounds),
                   sessions=1 + len(c.replicas))
        rows.append(row)
    base = contenders[0]
    comparisons = [{"shape": shape.label, "baseline": base.name, "contender": c.name, "metric": "p50_ms",
                    "speedup": None, **ratio_with_spread(samples[0], samples[i], seed=settings.seed)}
                   for i, c in enumerate(contenders) if i > 0]
    for comp in comparisons:
        comp["speedup"] = comp.pop("ratio")
    return rows, comparisons
