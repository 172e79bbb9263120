"""Builds the fused-attention kernel library once per session (CMake) and points the loader at it.

If ``EDGEDISTILL_PLUGIN_DIR`` is set (CI after ``make plugins``), that build is used as it is. Otherwise the library
is built by the step behind ``edgedistill plugins build`` into ``build/test-native`` with ONE CUDA architecture
(``EDGEDISTILL_TEST_CUDA_ARCH``, default: the GPU's, else 90) so nvcc takes seconds, or host-only where there is no
nvcc. Tests skip, with the reason, without CMake or a C++ compiler.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from edgedistill.plugins import loader
from edgedistill.plugins.build import build_plugins

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


def build_kernel_library(build_dir: Path = BUILD_DIR) -> Path:
    """Build the libraries through the package's own build step; returns the folder holding them."""
    cuda_archs = _cuda_arch() if shutil.which("nvcc") or os.environ.get("CUDACXX") else None
    return build_plugins(build_dir, cuda_archs=cuda_archs, jobs=2)


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
