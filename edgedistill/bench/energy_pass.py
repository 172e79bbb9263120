"""The power pass of a bench run: an idle baseline, then one steady-state window per contender and shape.

Runs after the latency pass (energy windows are seconds long, far coarser than an interleaved round)
and only where tegrastats exists (``power: auto``) or when asked for (``power: on``).
"""

from __future__ import annotations

from typing import Any

from edgedistill.bench.inputs import make_feeds
from edgedistill.bench.measure import Contender
from edgedistill.bench.power.sampler import tegrastats_available
from edgedistill.bench.power.window import energy_window, idle_baseline
from edgedistill.bench.probe import Probe, warm_up
from edgedistill.bench.settings import BenchSettings
from edgedistill.config import Shape
from edgedistill.tasks.inputs import InputSpec


def power_wanted(settings: BenchSettings) -> bool:
    return settings.power == "on" or (settings.power == "auto" and tegrastats_available())


def energy_pass(contenders: list[Contender], shapes: list[Shape], settings: BenchSettings, spec: InputSpec,
                rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Measure energy; adds ``power`` to each matching row and returns ``{"idle": {rail: mW}, "window_s"}``,
    or None when power is not measured."""
    if not power_wanted(settings):
        return None
    idle = idle_baseline(settings.idle_s)
    by_key = {(r["contender"], r["shape"]): r for r in rows}
    for shape in shapes:
        feeds = make_feeds(shape, spec, settings.seed)
        for c in contenders:
            probe = Probe(c.session, feeds)
            warm_up(probe, settings.warmup, settings.warmup_s)
            by_key[(c.name, shape.label)]["power"] = energy_window(probe, settings.power_s, idle)
    from edgedistill.bench.power.energy import mean_rails

    return {"idle_mw": mean_rails(idle), "idle_s": settings.idle_s, "window_s": settings.power_s}
