"""Summary statistics of latency samples."""

from __future__ import annotations

import numpy as np

from edgedistill.errors import InputError

PERCENTILES = (50, 90, 95, 99)


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
