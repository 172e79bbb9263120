"""Build the native libraries from the sources inside the package, checkout or installed wheel alike.

``edgedistill plugins build`` configures ``edgedistill/plugins`` (its own CMake project) into a build folder, by
default under the user cache (``$EDGEDISTILL_CACHE``, else ``$XDG_CACHE_HOME/edgedistill``, else
``~/.cache/edgedistill``), one folder per edgedistill version and library ABI, where the loader looks next.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from edgedistill.errors import InputError, MissingDependencyError

PLUGINS_DIR = Path(__file__).resolve().parent
CACHE_ENV = "EDGEDISTILL_CACHE"


def cache_root() -> Path:
    """edgedistill's user cache folder (the XDG convention torch and Hugging Face follow)."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "edgedistill"


def default_build_dir() -> Path:
    """Where ``edgedistill plugins build`` builds unless told otherwise (versioned, so upgrades rebuild)."""
    from edgedistill import __version__
    from edgedistill.plugins.loader import ABI_VERSION

    return cache_root() / "plugins" / f"{__version__}-abi{ABI_VERSION}"


def configure_command(build_dir: Path, cuda: bool | None, cuda_archs: str | None,
                      tensorrt_root: Path | None) -> list[str]:
    """The CMake configure command line (``cuda``: None = when nvcc is found)."""
    cmd = ["cmake", "-S", str(PLUGINS_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release"]
    if cuda is not None:
        cmd.append(f"-DEDGEDISTILL_CUDA={'ON' if cuda else 'OFF'}")
    if cuda_archs:
        cmd.append(f"-DCMAKE_CUDA_ARCHITECTURES={cuda_archs}")
    if tensorrt_root is not None:
        cmd.append(f"-DTensorRT_ROOT={tensorrt_root}")
    return cmd


def run_step(cmd: list[str]) -> None:
    """Run one build step; a failure becomes one line naming the step and CMake's last error line.

    Raises:
        InputError: the step failed.
    """
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "no output")
        raise InputError(f"`{' '.join(cmd)}` failed: {last} (run it by hand to see the whole log)")


def forget_other_source(build_dir: Path) -> None:
    """Drop a CMake cache configured from another source folder (e.g. the repository root), which CMake refuses to
    reuse; the build folder's other contents stay."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.is_file():
        return
    source = next((line.split("=", 1)[1].strip() for line in cache.read_text(errors="replace").splitlines()
                   if line.startswith("CMAKE_HOME_DIRECTORY:")), None)
    if source is not None and Path(source).resolve() != PLUGINS_DIR:
        cache.unlink()
        shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)


def build_plugins(build_dir: Path | None = None, cuda: bool | None = None, cuda_archs: str | None = None,
                  tensorrt_root: Path | None = None, jobs: int | None = None) -> Path:
    """Configure and build the kernel library (and the TensorRT plugin where TensorRT is found).

    Returns:
        The folder holding the libraries (``<build_dir>/lib``), which the loader searches.
    Raises:
        MissingDependencyError: CMake is not installed.
        InputError: configuration or compilation failed.
    """
    if shutil.which("cmake") is None:
        raise MissingDependencyError("cmake not found: install it (pip install cmake, or your system's package)")
    build_dir = Path(build_dir or default_build_dir()).resolve()
    forget_other_source(build_dir)
    if not (build_dir / "CMakeCache.txt").is_file() or cuda is not None or cuda_archs or tensorrt_root:
        run_step(configure_command(build_dir, cuda, cuda_archs, tensorrt_root))
    run_step(["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2)])
    return build_dir / "lib"
