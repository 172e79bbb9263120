"""Peak resident memory of this process, resettable on Linux so each measurement gets its own peak,
and GPU memory where torch runs on CUDA."""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Any

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS; False where that is not possible."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def status_mb(key: str) -> float | None:
    """A ``/proc/self/status`` value (kB) in MiB, or None off Linux."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS in MiB: VmHWM since the last reset, else the process-lifetime maximum from getrusage."""
    peak = status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0  # bytes on macOS, kB on Linux


def current_rss_mb() -> float:
    """Resident memory now (MiB); the peak where the current value is not available."""
    now = status_mb("VmRSS")
    return now if now is not None else peak_rss_mb()


def gpu_peak_mb(session: Any) -> float | None:
    """Peak CUDA memory torch allocated since the last reset, for torch sessions on CUDA; else None."""
    if getattr(session, "backend", None) != "torch" or not str(getattr(session, "device", "cpu")).startswith("cuda"):
        return None
    import torch

    return float(torch.cuda.max_memory_allocated()) / 2**20


def reset_gpu_peak(session: Any) -> None:
    if gpu_peak_mb(session) is not None:
        import torch

        torch.cuda.reset_peak_memory_stats()
