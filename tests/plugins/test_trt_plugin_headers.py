"""The TensorRT plugin compiled against each TensorRT version's public headers and driven on the CPU.

TensorRT itself is not needed: ``trt_plugin_driver.cpp`` stubs libnvinfer's registry and routes the CUDA launch to the
host reference. Set ``EDGEDISTILL_TRT_HEADERS`` to a ':'-separated list of TensorRT include folders (e.g. extracted
from the OSS TensorRT repository's release branches), otherwise the test skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgedistill.plugins import FUSED_ATTENTION_DIR, loader

HEADER_DIRS = [Path(p) for p in os.environ.get("EDGEDISTILL_TRT_HEADERS", "").split(":") if p]


def cuda_include() -> Path | None:
    roots = [os.environ.get("CUDA_HOME", ""), os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        roots.append(str(Path(nvcc).resolve().parents[1]))
    for root in filter(None, roots):
        if (Path(root) / "include" / "cuda_runtime_api.h").is_file():
            return Path(root) / "include"
    return None


def generated_dir(build: Path) -> Path:
    """Where the build wrote fused_attention_spec.h: ``fused_attention/`` for the package's build step, the source
    path for the root CMakeLists.txt; the newest when both are there."""
    found = [d for d in (build / "fused_attention" / "generated",
                         build / "edgedistill" / "plugins" / "fused_attention" / "generated")
             if (d / "fused_attention_spec.h").is_file()]
    assert found, f"no generated fused_attention_spec.h under {build}"
    return max(found, key=lambda d: (d / "fused_attention_spec.h").stat().st_mtime)


@pytest.mark.skipif(not HEADER_DIRS, reason="EDGEDISTILL_TRT_HEADERS not set (':'-separated TensorRT include dirs)")
@pytest.mark.parametrize("include", HEADER_DIRS, ids=str)
def test_plugin_against_tensorrt_headers(kernel_lib, include, tmp_path):
    cuda = cuda_include()
    if cuda is None or shutil.which("g++") is None:
        pytest.skip("needs g++ and the CUDA runtime headers (cuda_runtime_api.h)")
    generated = generated_dir(Path(os.environ[loader.ENV_VAR]).parent)
    exe = tmp_path / "driver"
    compile_cmd = [
        "g++", "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-deprecated-declarations",
        f"-I{FUSED_ATTENTION_DIR}", f"-I{generated}", "-isystem", str(include), "-isystem", str(cuda),
        str(Path(__file__).parent / "trt_plugin_driver.cpp"), str(FUSED_ATTENTION_DIR / "fused_attention_plugin.cpp"),
        str(FUSED_ATTENTION_DIR / "attention_host.cpp"), "-o", str(exe),
    ]
    built = subprocess.run(compile_cmd, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-4000:]
    ran = subprocess.run([str(exe)], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout.startswith("OK"), ran.stdout + ran.stderr
