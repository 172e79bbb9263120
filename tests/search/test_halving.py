"""Successive halving under a floor, on made-up qualities: who is trained, for how long, why the rest are dropped."""

from __future__ import annotations

from edgedistill.search.halving import Contender, rung_steps, successive_halving

# quality after n steps: approaches a ceiling; the fast ones cannot reach the floor, the middle one can, slowly
CEILING = {"tiny": 0.90, "small": 0.95, "mid": 0.985, "big": 0.995, "huge": 0.999}
LATENCY = {"tiny": 1.0, "small": 2.0, "mid": 3.0, "big": 4.0, "huge": 8.0}


def quality(name: str, steps: int) -> float:
    return CEILING[name] * (1 - 0.5 / (1 + steps / 10))


def run(floor: float, keep: int = 1, afford=lambda n, s: True):
    trained: list[tuple[str, int]] = []
    dropped: dict[str, str] = {}

    def train(name: str, steps: int) -> float:
        trained.append((name, steps))
        return quality(name, steps)

    entrants = [Contender(n, LATENCY[n], quality(n, 0)) for n in CEILING]
    final = successive_halving(entrants, rung_steps(10, 400, 3), floor, 3, keep, train, afford,
                               lambda n, why: dropped.setdefault(n, why))
    return [c.name for c in final], trained, dropped


def test_rungs_grow_by_eta_below_the_full_budget() -> None:
    assert rung_steps(10, 400, 3) == [10, 30, 90, 270]
    assert rung_steps(60, 600, 3) == [60, 180, 540]
    assert rung_steps(600, 600, 3) == []


def test_slower_than_one_meeting_the_floor_is_never_trained() -> None:
    # after 10 steps: tiny .675 small .713 mid .739 big .746 huge .749; the floor .74 is met by big first (fastest)
    final, trained, dropped = run(floor=0.74)
    assert ("huge", 10) not in trained and "huge" in dropped and "big" in dropped["huge"]
    assert final == ["mid"]  # mid reaches it at 30 steps and is faster than big
    assert "already meets the floor" in dropped["big"] or "finalist" in dropped["big"]
    assert all(name != "big" or steps == 10 for name, steps in trained)  # big met the floor: no more proxy steps


def test_each_rung_keeps_a_third_of_those_faster_than_the_best() -> None:
    final, trained, dropped = run(floor=0.99)  # only huge reaches .99 at all, and only after ~many steps
    rung0 = [n for n, s in trained if s == 10]
    assert rung0 == ["tiny", "small", "mid", "big", "huge"]  # fastest first, none meets .99 yet
    rung1 = [n for n, s in trained if s == 30]
    assert len(rung1) == 2 and set(rung1) == {"big", "huge"}  # ceil(5 / 3): the best two by quality
    assert "not among the best" in dropped["tiny"]
    assert len(final) == 1


def test_budget_refusals_are_recorded() -> None:
    final, trained, dropped = run(floor=0.99, afford=lambda n, s: s <= 10)
    assert {s for _, s in trained} == {10}
    assert any("budget" in why for why in dropped.values())


def test_keep_several_finalists() -> None:
    final, _, _ = run(floor=0.74, keep=2)
    assert final[0] == "mid" and len(final) == 2
