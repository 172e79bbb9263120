"""A/B(/C…) interleaved timing: every contender runs a few calls per round, in alternating order.

Timing A fully and then B lets slow drift (thermal throttling, a neighbour's job, frequency scaling)
land on one side only. Interleaving rounds — A B, then B A, then A B … — gives both sides the same
machine state within a round, so the ratio of medians and its per-round spread are fair.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

Probe = Callable[[], float]


def round_order(count: int, r: int) -> list[int]:
    """Contender order in round ``r``: forward on even rounds, reversed on odd ones (A B / B A), so neither
    side always runs right after the other."""
    forward = list(range(count))
    return forward if r % 2 == 0 else forward[::-1]


def interleaved(probes: Sequence[Probe], iterations: int, rounds: int,
                min_duration_s: float = 0.0, round_warmup: int = 1) -> list[list[list[float]]]:
    """Time ``probes`` interleaved; returns samples[contender][round] = seconds per call.

    Each contender gets ``ceil(iterations / rounds)`` calls per round; rounds continue past ``rounds``
    until ``min_duration_s`` has passed (so every contender gets at least ``iterations`` calls).
    ``round_warmup`` untimed calls open each contender's turn: the switch from another model leaves the
    caches cold, and that first call measures the switch, not the model's steady state.
    """
    rounds = max(1, min(rounds, iterations))
    per_round = math.ceil(iterations / rounds)
    samples: list[list[list[float]]] = [[] for _ in probes]
    start = time.perf_counter()
    r = 0
    while r < rounds or time.perf_counter() - start < min_duration_s:
        for i in round_order(len(probes), r):
            probe = probes[i]
            for _ in range(round_warmup):
                probe()
            samples[i].append([probe() for _ in range(per_round)])
        r += 1
    return samples


def interleaved_ms(calls: Mapping[str, Callable[[], object]], rounds: int, per_round: int,
                   round_warmup: int = 1) -> dict[str, list[float]]:
    """Milliseconds per call for each named callable, timed interleaved (see :func:`interleaved`)."""

    def probe(call: Callable[[], object]) -> Probe:
        def timed() -> float:
            start = time.perf_counter()
            call()
            return (time.perf_counter() - start) * 1e3

        return timed

    samples = interleaved([probe(c) for c in calls.values()], rounds * per_round, rounds, round_warmup=round_warmup)
    return {name: [t for r in per_contender for t in r] for name, per_contender in zip(calls, samples)}
