"""The environment fingerprint recorded next to every benchmark: machine, accelerators, libraries, commit.

Two results files are comparable only when their fingerprints agree; ``compare`` says where they differ.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from edgedistill.bench.jetson import jetson_state
from edgedistill.bench.threads import thread_env

CPU_KEYS = ("model name", "Hardware", "Processor", "cpu model")
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
             "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")
PACKAGES = ("torch", "onnxruntime", "onnxruntime-gpu", "tensorrt", "transformers", "numpy", "optimum")
CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_fields(text: str) -> dict[str, str]:
    """First value of each key in /proc/cpuinfo text (the first processor's block, plus SoC-wide keys)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in out and value.strip():
            out[key.strip()] = value.strip()
    return out


def cpu_model(fields: dict[str, str] | None = None) -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    if fields is None:
        with contextlib.suppress(OSError):
            fields = cpuinfo_fields(CPUINFO.read_text())
    for key in CPU_KEYS:
        if fields and fields.get(key):
            return fields[key]
    return platform.processor() or platform.machine()


def isa_flags(fields: dict[str, str]) -> list[str]:
    """Instruction-set extensions that matter for inference kernels (x86 ``flags``, Arm ``Features``)."""
    have = set((fields.get("flags") or fields.get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in have]


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in PACKAGES:
        out[pkg] = None
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def command_output(args: list[str], timeout: float = 5.0) -> str | None:
    """stdout of a short command, or None where it is missing or fails."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def gpu_info() -> dict[str, Any]:
    """GPU names, driver and CUDA versions from nvidia-smi and torch; empty lists where there is none."""
    info: dict[str, Any] = {"gpus": [], "driver": None, "cuda": None}
    smi = command_output(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    for line in (smi or "").splitlines():
        name, _, driver = line.partition(",")
        info["gpus"].append(name.strip())
        info["driver"] = driver.strip() or None
    with contextlib.suppress(Exception):
        import torch

        info["cuda"] = torch.version.cuda
        if not info["gpus"] and torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def git_commit(cwd: Path | None = None) -> str | None:
    """The project's commit, with ``-dirty`` when the work tree has changes; None outside a checkout."""
    root = cwd or Path(__file__).resolve().parents[2]
    commit = command_output(["git", "-C", str(root), "rev-parse", "HEAD"])
    if commit is None:
        return None
    dirty = command_output(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    return commit + ("-dirty" if dirty else "")


def fingerprint(threads: int, inter_op_threads: int = 1) -> dict[str, Any]:
    """Everything a reader needs to judge whether two results are comparable.

    Returns:
        ``{cpu, cores, machine, isa, python, os, versions{...}, gpus, driver, cuda, jetson{...},
        threads, inter_op_threads, thread_env{OMP_NUM_THREADS...}, git_commit, load_avg_1m}``;
        the top-level ``torch``/``onnxruntime`` keys repeat the versions for older readers.
    """
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        fields = cpuinfo_fields(CPUINFO.read_text())
    env: dict[str, Any] = {
        "cpu": cpu_model(fields), "cores": os.cpu_count(), "machine": platform.machine(),
        "isa": isa_flags(fields), "python": platform.python_version(), "os": platform.platform(),
        "versions": versions(), **gpu_info(), "jetson": jetson_state(),
        "threads": threads, "inter_op_threads": inter_op_threads, "thread_env": thread_env(),
        "git_commit": git_commit(),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    env["torch"], env["onnxruntime"] = env["versions"]["torch"], env["versions"]["onnxruntime"]
    return env


def bench_env(threads: int, peak_rss_resettable: bool) -> dict[str, Any]:
    """The fingerprint plus whether peak RSS could be reset per measurement (kept for older callers)."""
    return {**fingerprint(threads), "peak_rss_resettable": peak_rss_resettable}
