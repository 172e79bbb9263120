"""Energy windows: an idle baseline, then a steady-state run of one session under tegrastats."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edgedistill.bench.power.energy import energy_summary
from edgedistill.bench.power.sampler import TegrastatsSampler
from edgedistill.bench.power.tegrastats import Sample


def idle_baseline(seconds: float) -> list[Sample]:
    """Samples while this process sleeps: what the board draws with the model loaded but not running."""
    with TegrastatsSampler() as sampler:
        time.sleep(seconds)
    return [s for _, s in sampler.samples]


def energy_window(probe: Callable[[], float], seconds: float, idle: list[Sample]) -> dict[str, Any]:
    """Run ``probe`` back to back for ``seconds`` (after warm-up, so the window is steady state) under
    tegrastats; returns :func:`energy_summary` of the window."""
    calls = 0
    with TegrastatsSampler() as sampler:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            probe()
            calls += 1
    return energy_summary([s for _, s in sampler.samples], idle, sampler.seconds, calls)
