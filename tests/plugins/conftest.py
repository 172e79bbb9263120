"""Builds the fused-attention kernel library once per session (CMake) and points the loader at it.

If ``EDGEDISTILL_PLUGIN_DIR`` is set (CI after ``make plugins``), that build is used as it is. Otherwise the library is
configured into ``build/test-native`` with ONE CUDA architecture (``EDGEDISTILL_TEST_CUDA_ARCH``, default: the GPU's,
else 90) so nvcc takes seconds, or host-only where there is no nvcc. Tests skip, with the reason, without CMake or a
C++ compiler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgedistill.plugins import loader

BUILD_DIR = loader.REPO_ROOT / "build" / "test-native"


def _cuda_arch() -> str:
    if arch := os.environ.get("EDGEDISTILL_TEST_CUDA_ARCH"):
        return arch
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability()
            return f"{major}{minor}"
    except ImportError:
        pass
    return "90"


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def build_kernel_library(build_dir: Path = BUILD_DIR) -> Path:
    """Configure (once) and build the kernel library target; returns the folder holding it."""
    if not (build_dir / "CMakeCache.txt").is_file():
        configure = ["cmake", "-S", str(loader.REPO_ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]
        if shutil.which("nvcc") or os.environ.get("CUDACXX"):
            configure.append(f"-DCMAKE_CUDA_ARCHITECTURES={_cuda_arch()}")
        _run(configure)
    _run(["cmake", "--build", str(build_dir), "-j", "2", "--target", loader.KERNEL_LIBRARY])
    return build_dir / "lib"


@pytest.fixture(scope="session")
def kernel_lib():
    """The loaded kernel library (ctypes), built if needed."""
    if not os.environ.get(loader.ENV_VAR):
        if shutil.which("cmake") is None:
            pytest.skip("cmake not found: cannot build the fused-attention library")
        if shutil.which(os.environ.get("CXX", "c++")) is None and shutil.which("g++") is None:
            pytest.skip("no C++ compiler found: cannot build the fused-attention library")
        os.environ[loader.ENV_VAR] = str(build_kernel_library())
    loader.load_kernel_library.cache_clear()
    return loader.load_kernel_library()
