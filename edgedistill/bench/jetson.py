"""Jetson power state: board model, ``nvpmodel`` mode and whether ``jetson_clocks`` has locked the clocks.

Energy and latency on a Jetson depend on both, so they are recorded with every result (None elsewhere).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

MODEL = Path("/proc/device-tree/model")
CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


def parse_nvpmodel(text: str) -> dict[str, Any]:
    """``nvpmodel -q`` output ("NV Power Mode: MAXN\\n0") as ``{"mode": "MAXN", "id": 0}``."""
    mode, ident = None, None
    for line in text.splitlines():
        if ":" in line and "Power Mode" in line:
            mode = line.split(":", 1)[1].strip()
        elif line.strip().isdigit():
            ident = int(line.strip())
    return {"mode": mode, "id": ident}


def clocks_locked(cpufreq: Path = CPUFREQ) -> bool | None:
    """True when the CPU's minimum frequency equals its maximum — what ``jetson_clocks`` sets; None if unknown."""
    try:
        low = int((cpufreq / "scaling_min_freq").read_text())
        high = int((cpufreq / "cpuinfo_max_freq").read_text())
    except (OSError, ValueError):
        return None
    return low == high


def board_model() -> str | None:
    with contextlib.suppress(OSError):
        text = MODEL.read_bytes().decode(errors="replace").strip("\x00\n ")
        return text if "jetson" in text.lower() or "nvidia" in text.lower() else None
    return None


def nvpmodel_query() -> dict[str, Any]:
    if shutil.which("nvpmodel") is None:
        return {"mode": None, "id": None}
    try:
        done = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {"mode": None, "id": None}
    return parse_nvpmodel(done.stdout)


def jetson_state() -> dict[str, Any] | None:
    """``{model, nvpmodel: {mode, id}, jetson_clocks: bool|None}`` on a Jetson, else None."""
    model = board_model()
    if model is None and shutil.which("tegrastats") is None:
        return None
    return {"model": model, "nvpmodel": nvpmodel_query(), "jetson_clocks": clocks_locked()}
