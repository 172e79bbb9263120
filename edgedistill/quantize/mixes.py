"""The greedy walk both accuracy budgets take (INT8 static with float fallbacks, weight-only with INT8 ones): keep
0, 1, 2 … of the most sensitive groups at the higher precision until the budget holds, and which mix to keep."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

M = TypeVar("M")


def greedy_mixes(ranking: list[str], make: Callable[[list[str]], M], ok: Callable[[M], bool]) -> list[M]:
    """``make(ranking[:k])`` for k = 0, 1, 2 …, stopping after the first mix that is ``ok``."""
    mixes: list[M] = []
    for k in range(len(ranking) + 1):
        mixes.append(make(ranking[:k]))
        if ok(mixes[-1]):
            break
    return mixes


def chosen_mix(mixes: list[M], ok: Callable[[M], bool], value: Callable[[M], float],
               quantizes: Callable[[M], bool]) -> tuple[M, bool]:
    """``(mix, met)``: the first mix that is ``ok``, else the one of highest ``value`` among those that still
    ``quantizes`` something (all of them when none does)."""
    for mix in mixes:
        if ok(mix):
            return mix, True
    return max([m for m in mixes if quantizes(m)] or mixes, key=value), False
