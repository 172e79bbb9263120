"""Mean power per rail over a window, minus an idle baseline, and energy per inference."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedistill.bench.power.tegrastats import Sample, board_rail


def mean_rails(samples: list[Sample]) -> dict[str, float]:
    """Mean mW of each rail over the samples (rails missing from some lines average over those present)."""
    names = sorted({r for s in samples for r in s.rails})
    return {r: float(np.mean([s.rails[r] for s in samples if r in s.rails])) for r in names}


def energy_summary(active: list[Sample], idle: list[Sample], seconds: float, calls: int) -> dict[str, Any]:
    """Power and energy of a steady-state window.

    Args:
        active: samples during the window; idle: samples of the idle baseline (may be empty);
        seconds: window length; calls: inferences completed in it.
    Returns:
        ``{rails_mw: {rail: mean}, idle_mw: {rail: mean}, net_mw: {rail: mean - idle}, board_rail,
        mj_per_inference (board rail, net of idle), mj_per_inference_gross, samples, window_s, calls}``;
        energy is None when there is no board-input rail or no call.
    """
    rails, base = mean_rails(active), mean_rails(idle)
    net = {r: v - base.get(r, 0.0) for r, v in rails.items()}
    board = board_rail(rails)

    def per_call(mw: float | None) -> float | None:
        return mw * seconds / calls if mw is not None and calls else None  # mW x s = mJ

    return {"rails_mw": rails, "idle_mw": base, "net_mw": net, "board_rail": board,
            "mj_per_inference": per_call(net.get(board) if board else None),
            "mj_per_inference_gross": per_call(rails.get(board) if board else None),
            "samples": len(active), "window_s": seconds, "calls": calls}
