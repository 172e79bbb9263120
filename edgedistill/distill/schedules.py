"""Learning-rate factors: linear warm-up, then linear or cosine decay to zero."""

from __future__ import annotations

import math
from collections.abc import Callable


def lr_factor(kind: str, total: int, warmup: int) -> Callable[[int], float]:
    """The factor on the peak rate at each step (LambdaLR's function)."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return max(0.0, 1.0 - progress)

    return factor


def linear_schedule(total: int, warmup: int) -> Callable[[int], float]:
    return lr_factor("linear", total, warmup)
