"""Summary statistics of latency samples, and ratios of medians with their spread."""

from __future__ import annotations

import numpy as np

from edgedistill.errors import InputError

PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP = 2000


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """Summarise per-call latencies given in seconds.

    Returns:
        ``p50_ms, p90_ms, p95_ms, p99_ms`` (linear-interpolated percentiles), ``mean_ms, std_ms`` (sample std),
        ``min_ms, max_ms`` in milliseconds, and ``cv`` = std / mean (spread relative to the mean).
    Raises:
        InputError: no samples.
    """
    if not seconds:
        raise InputError("no latency samples; run at least one iteration")
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    stats = {f"p{q}_ms": float(np.percentile(ms, q)) for q in PERCENTILES}
    mean = float(ms.mean())
    std = float(ms.std(ddof=1)) if len(ms) > 1 else 0.0
    stats.update(mean_ms=mean, std_ms=std, min_ms=float(ms.min()), max_ms=float(ms.max()),
                 cv=std / mean if mean > 0 else 0.0)
    return stats


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, seed: int = 0, n: int = BOOTSTRAP) -> tuple[float, float]:
    """95% bootstrap interval of median(num) / median(den), resampling each side independently."""
    rng = np.random.default_rng(seed)
    a = np.median(rng.choice(num, size=(n, len(num))), axis=1)
    b = np.median(rng.choice(den, size=(n, len(den))), axis=1)
    low, high = np.percentile(a / b, [2.5, 97.5])
    return float(low), float(high)


def ratio_with_spread(num: list[list[float]], den: list[list[float]], seed: int = 0) -> dict[str, float]:
    """Ratio of medians of two interleaved sample sets, with two measures of its spread.

    Args:
        num, den: per-round samples (seconds) of the two sides, round i of each taken back to back.
    Returns:
        ``ratio`` = median(all num) / median(all den); ``ci_low, ci_high``: 95% bootstrap interval;
        ``round_p25, round_p75``: interquartile range of the per-round ratios of medians (each round
        sees the same machine state on both sides, so drift between rounds cancels); ``rounds``.
    Raises:
        InputError: no rounds, or rounds of unequal count.
    """
    if not num or len(num) != len(den):
        raise InputError("a ratio needs the same number of rounds (at least one) on both sides")
    a, b = np.concatenate([np.asarray(r) for r in num]), np.concatenate([np.asarray(r) for r in den])
    per_round = np.array([np.median(x) / np.median(y) for x, y in zip(num, den, strict=True)])
    low, high = bootstrap_ratio(a, b, seed)
    p25, p75 = np.percentile(per_round, [25, 75])
    return {"ratio": float(np.median(a) / np.median(b)), "ci_low": low, "ci_high": high,
            "round_p25": float(p25), "round_p75": float(p75), "rounds": len(num)}
