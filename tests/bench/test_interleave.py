"""Interleaved A/B timing cancels drift; ratios of medians and their spread match hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from edgedistill.bench.interleave import interleaved, round_order
from edgedistill.bench.probe import time_calls, warm_up
from edgedistill.bench.stats import ratio_with_spread
from edgedistill.errors import InputError


class DriftingMachine:
    """Fake probes on a machine that slows down 1% per call: a call's 'time' is its cost times the drift."""

    def __init__(self) -> None:
        self.calls = 0
        self.log: list[str] = []

    def probe(self, name: str, cost: float):  # type: ignore[no-untyped-def]
        def call() -> float:
            self.calls += 1
            self.log.append(name)
            return cost * (1.0 + 0.01 * self.calls)
        return call


def test_round_order_alternates() -> None:
    assert [round_order(2, r) for r in range(3)] == [[0, 1], [1, 0], [0, 1]]


def test_interleaved_shapes_and_order() -> None:
    m = DriftingMachine()
    samples = interleaved([m.probe("A", 1.0), m.probe("B", 2.0)], iterations=6, rounds=3, round_warmup=0)
    assert [len(s) for s in samples] == [3, 3] and all(len(r) == 2 for s in samples for r in s)
    assert "".join(m.log) == "AABBBBAAAABB"


def test_each_turn_opens_with_an_untimed_call() -> None:
    """The first call after switching models (cold caches) is run but not counted."""
    m = DriftingMachine()
    samples = interleaved([m.probe("A", 1.0), m.probe("B", 2.0)], iterations=2, rounds=2, round_warmup=1)
    assert "".join(m.log) == "AABBBBAA"
    # A's timed calls are calls 2 and 8 (1-based): cost 1.0 times drift 1.02 and 1.08
    assert [round(t, 4) for r in samples[0] for t in r] == [1.02, 1.08]


def test_interleaving_cancels_drift() -> None:
    """True ratio 2.0: back to back, drift biases it; interleaved per-round ratios stay near 2."""
    m = DriftingMachine()
    a, b = m.probe("A", 2.0), m.probe("B", 1.0)
    seq_ratio = np.median(time_calls(a, 50, 0.0)) / np.median(time_calls(b, 50, 0.0))
    m2 = DriftingMachine()
    samples = interleaved([m2.probe("A", 2.0), m2.probe("B", 1.0)], iterations=50, rounds=25)
    result = ratio_with_spread(samples[0], samples[1])
    assert abs(seq_ratio - 2.0) > 0.5  # the sequential estimate is off by the drift
    assert result["round_p25"] == pytest.approx(2.0, abs=0.05) and result["round_p75"] == pytest.approx(2.0, abs=0.05)
    assert result["ratio"] == pytest.approx(2.0, abs=0.1)


def test_ratio_with_spread_numbers() -> None:
    num = [[2.0, 2.2], [2.0, 1.8]]
    den = [[1.0, 1.0], [1.0, 1.0]]
    r = ratio_with_spread(num, den)
    assert r["ratio"] == pytest.approx(2.0) and r["rounds"] == 2
    assert r["round_p25"] == pytest.approx(1.95) and r["round_p75"] == pytest.approx(2.05)  # rounds: 2.1, 1.9
    assert 1.8 <= r["ci_low"] <= r["ratio"] <= r["ci_high"] <= 2.2
    with pytest.raises(InputError, match="same number of rounds"):
        ratio_with_spread(num, den[:1])


def test_warm_up_by_count_and_time() -> None:
    m = DriftingMachine()
    assert warm_up(m.probe("A", 1.0), 4, 0.0) == 4
    assert warm_up(m.probe("A", 1.0), 0, 0.02) > 10
    assert len(time_calls(m.probe("A", 1.0), 3, 0.0)) == 3
    assert len(time_calls(m.probe("A", 1.0), 1, 0.02)) > 10


def test_interleaved_ms_times_each_named_call() -> None:
    from edgedistill.bench.interleave import interleaved_ms

    log: list[str] = []
    times = interleaved_ms({"a": lambda: log.append("a"), "b": lambda: log.append("b")}, rounds=2, per_round=2)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4}
    assert "".join(log) == "aaabbbbbbaaa"  # one untimed call opens each turn
    assert all(t >= 0 for v in times.values() for t in v)
