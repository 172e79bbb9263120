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
    # big meeting the floor takes none of the ceil(4 / 3) = 2 places: mid and small go on, and small, the faster,
    # reaches it at 30 steps (.831), so mid is then never trained for 30
    assert final == ["small"] and ("mid", 30) not in trained
    assert "tiny" in dropped and "not among the best 2" in dropped["tiny"]
    assert "finalist" in dropped["big"] or "already meets the floor" in dropped["big"]
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
    assert run(floor=0.99, keep=2)[0] == ["big", "huge"]  # none meets the floor: the two best at the last rung
    assert run(floor=0.74, keep=2)[0] == ["small"]  # the others are slower than small, which meets it


def test_a_slower_contender_meeting_the_floor_early_leaves_the_faster_ones_their_places() -> None:
    # the MiniLM search at lr 4e-4: four promising, eta 4; the 3-layer one meets .97 after 40 steps, the 2-layer one
    # (.961 then) only later; it must go on to the next rung, not be dropped for the 3-layer one's sake
    ceiling = {"L1": 0.93, "L2": 0.99, "L1w": 0.86, "L3": 0.995}
    latency = {"L1w": 1.0, "L1": 1.5, "L2": 2.0, "L3": 3.0}
    trained: list[tuple[str, int]] = []
    dropped: dict[str, str] = {}

    def train(name: str, steps: int) -> float:
        trained.append((name, steps))
        return ceiling[name] * (1 - 0.12 / (1 + steps / 10)) if name != "L3" else 0.975

    entrants = [Contender(n, latency[n], 0.8) for n in ceiling]
    final = successive_halving(entrants, rung_steps(40, 600, 4), 0.97, 4, 1, train, lambda n, s: True,
                               lambda n, why: dropped.setdefault(n, why))
    assert [c.name for c in final] == ["L2"]  # .966 after 40 steps, .983 after 160: faster than L3 and meeting it
    assert ("L2", 160) in trained and ("L3", 160) not in trained and "L1w" in dropped
