"""Successive halving under a quality floor: cheap proxy distillations decide which students earn more steps.

Rung ``r`` distils every surviving architecture up to step ``rungs[r]`` of its schedule (continuing from its
previous rung), fastest first. Once one of them meets the floor (after this rung, an earlier one, or untrained),
every slower one is dropped without training: it could only ship slower. After a rung, the fastest architecture
meeting the floor stays, and of those faster than it (not yet meeting it) the best
``1/eta`` by quality go on to the next rung. What is left at the end are the finalists.

The one meeting the floor takes none of the ``1/eta`` places: it is not trained again before the final distillation
(it already qualifies), so the places go to faster ones that might still reach the floor. Counting it among them
would drop every faster contender as soon as a slower one met the floor early: with four contenders and eta 4, a
3-layer MiniLM student meeting a 97 % floor after 40 steps at lr 4e-4 left no place for the 2-layer one, which
was at 96.1 % then and keeps 99 % of the teacher fully distilled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Train = Callable[[str, int], float]  # (architecture, steps) -> quality (the metric over the teacher's)
Afford = Callable[[str, int], bool]  # whether the budget still allows distilling it for that many steps
Drop = Callable[[str, str], None]  # (architecture, why)


@dataclass
class Contender:
    name: str
    latency_ms: float  # its fastest precision's latency: what it could ship at
    quality: float | None = None  # untrained, then after the latest rung it was distilled in


def rung_steps(proxy_steps: int, full_steps: int, eta: int) -> list[int]:
    """Steps per proxy rung: ``proxy_steps`` times 1, eta, eta², … while below the full ``full_steps``."""
    steps, found = proxy_steps, []
    while steps < full_steps:
        found.append(steps)
        steps *= eta
    return found


def fastest_meeting(alive: list[Contender], floor: float) -> Contender | None:
    meeting = [c for c in alive if c.quality is not None and c.quality >= floor]
    return min(meeting, key=lambda c: c.latency_ms) if meeting else None


def run_rung(alive: list[Contender], steps: int, floor: float, train: Train, afford: Afford,
             drop: Drop) -> list[Contender]:
    """Distil each contender for ``steps``, fastest first. One that already meets the floor is kept as it is; those
    slower than it are dropped without training, as are those the budget no longer allows. Returns those kept."""
    kept: list[Contender] = []
    for c in sorted(alive, key=lambda c: c.latency_ms):
        best = fastest_meeting(kept, floor)
        if best is not None:
            drop(c.name, f"slower ({c.latency_ms:.3g} ms) than {best.name} ({best.latency_ms:.3g} ms), which "
                         f"already meets the floor: never trained for {steps} steps")
            continue
        if c.quality is not None and c.quality >= floor:
            kept.append(c)
            continue
        if not afford(c.name, steps):
            drop(c.name, f"the budget left cannot distil it for {steps} steps")
            continue
        c.quality = train(c.name, steps)
        kept.append(c)
    return kept


def survivors(trained: list[Contender], floor: float, eta: int, keep: int, steps: int, drop: Drop) -> list[Contender]:
    """The fastest contender meeting the floor, and the best 1/eta (at least ``keep``) of those faster than it."""
    best = fastest_meeting(trained, floor)
    faster = [c for c in trained if c is not best and (best is None or c.latency_ms < best.latency_ms)]
    room = max(keep, math.ceil(len(trained) / eta))
    ranked = sorted(faster, key=lambda c: c.quality or 0.0, reverse=True)
    for c in ranked[room:]:
        drop(c.name, f"quality {c.quality:.4f} after {steps} steps is not among the best {room} of those faster "
                     "than the fastest meeting the floor")
    kept = ranked[:room] + ([best] if best is not None else [])
    return sorted(kept, key=lambda c: c.latency_ms)


def finalists(kept: list[Contender], floor: float, keep: int, drop: Drop) -> list[Contender]:
    """At most ``keep``: the fastest meeting the floor first, then the best by quality of the faster ones."""
    best = fastest_meeting(kept, floor)
    others = sorted((c for c in kept if c is not best), key=lambda c: c.quality or 0.0, reverse=True)
    chosen = ([best] if best is not None else []) + others
    for c in chosen[keep:]:
        drop(c.name, f"not among the {keep} finalist(s) (quality {c.quality or 0.0:.4f} at the last rung)")
    return sorted(chosen[:keep], key=lambda c: c.latency_ms)


def successive_halving(contenders: list[Contender], rungs: list[int], floor: float, eta: int, keep: int,
                       train: Train, afford: Afford, drop: Drop) -> list[Contender]:
    """Run every rung (stopping early once no more than ``keep`` remain) and return the finalists."""
    alive = list(contenders)
    for steps in rungs:
        if len(alive) <= keep:
            break
        alive = survivors(run_rung(alive, steps, floor, train, afford, drop), floor, eta, keep, steps, drop)
    return finalists(alive, floor, keep, drop)
