"""The machine and library versions a benchmark ran on, recorded next to its numbers."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

CPU_KEYS = ("model name", "Hardware", "Processor", "cpu model")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in CPU_KEYS and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def bench_env(threads: int, peak_rss_resettable: bool) -> dict[str, Any]:
    """``{cpu, cores, machine, python, torch, onnxruntime, threads, peak_rss_resettable, load_avg_1m}``.

    ``load_avg_1m`` (None where unknown) shows whether other work competed for the CPU during the run.
    """
    env: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "threads": threads,
        "peak_rss_resettable": peak_rss_resettable,
    }
    env["load_avg_1m"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    for pkg in ("torch", "onnxruntime"):
        env[pkg] = None
        with contextlib.suppress(metadata.PackageNotFoundError):
            env[pkg] = metadata.version(pkg)
    return env
