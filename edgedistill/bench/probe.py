"""One timed call of a session, by the wall clock or by the backend's own (CUDA-event) timer.

A probe returns the seconds the measured part took; GPU probes also keep host-to-device and
device-to-host copy times apart, as trtexec reports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


class Probe:
    """``probe()`` runs the session once on fixed feeds and returns seconds; ``parts`` collects copy times."""

    def __init__(self, session: Any, feeds: dict[str, np.ndarray], split_copies: bool = False):
        self.session = session
        self.feeds = feeds
        self.parts: dict[str, list[float]] = {"h2d_s": [], "d2h_s": []}
        self.timer = "cuda_event" if split_copies and getattr(session, "device", "cpu") != "cpu" else "wall"
        self.call: Callable[[], float] = self.timed if self.timer == "cuda_event" else self.wall

    def wall(self) -> float:
        run, feeds = self.session.run, self.feeds
        t0 = time.perf_counter()
        run(feeds)
        return time.perf_counter() - t0

    def timed(self) -> float:
        _, parts = self.session.timed_run(self.feeds)
        self.parts["h2d_s"].append(parts["h2d_s"])
        self.parts["d2h_s"].append(parts["d2h_s"])
        return float(parts["compute_s"])

    def __call__(self) -> float:
        return self.call()


class RotatingProbe:
    """Calls several probes in turn (one per fresh session of the same model), so their samples pool into one.

    Each session gets its own memory layout (weight buffers, arena, pre-packed kernels), and on some machines
    that alone moves latency by a few percent from one session to the next; pooling a few sessions averages
    that luck out, so two benchmark runs agree more closely.
    """

    def __init__(self, probes: list[Probe]):
        self.probes = probes
        self.parts = probes[0].parts
        self.timer = probes[0].timer
        self.next = 0

    def __call__(self) -> float:
        probe = self.probes[self.next]
        self.next = (self.next + 1) % len(self.probes)
        return probe()


def warm_up(probe: Callable[[], float], count: int, seconds: float) -> int:
    """Untimed calls: at least ``count`` and at least ``seconds`` long. Returns how many were made."""
    done = 0
    start = time.perf_counter()
    while done < count or time.perf_counter() - start < seconds:
        probe()
        done += 1
    return done


def time_calls(probe: Callable[[], float], iterations: int, min_duration_s: float) -> list[float]:
    """Seconds per call: at least ``iterations`` calls, continuing until ``min_duration_s`` has passed."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < iterations or time.perf_counter() - start < min_duration_s:
        times.append(probe())
    return times
