"""Find and load the native fused-attention libraries built by CMake.

Search order for each library: ``$EDGEDISTILL_PLUGIN_DIR`` (a folder, or the library file itself); in a source
checkout, its CMake build folder ``<repo>/build/lib``; the folder ``edgedistill plugins build`` builds into by default
(under the user cache, see :mod:`edgedistill.plugins.build`); then ``edgedistill/plugins/lib`` (a wheel with
prebuilt libraries).
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache
from pathlib import Path

from edgedistill.errors import MissingDependencyError
from edgedistill.plugins import fused_attention_spec

ENV_VAR = "EDGEDISTILL_PLUGIN_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]  # the source checkout, when edgedistill runs from one
KERNEL_LIBRARY = "edgedistill_attention"
PLUGIN_LIBRARY = "edgedistill_attention_plugin"
ABI_VERSION = 4

EDFA_OK = 0
EDFA_ERR_NO_CUDA = 7


class EdfaProblem(ctypes.Structure):
    """Mirror of ``EdfaProblem`` in attention_api.h."""

    _fields_ = [
        ("batch", ctypes.c_int32),
        ("seq_q", ctypes.c_int32),
        ("seq_kv", ctypes.c_int32),
        ("num_heads", ctypes.c_int32),
        ("head_size", ctypes.c_int32),
        ("dtype", ctypes.c_int32),
        ("mask_type", ctypes.c_int32),
        ("causal", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("num_kv_heads", ctypes.c_int32),
    ]


def library_filename(stem: str) -> str:
    """Platform file name of a CMake shared library target."""
    if sys.platform == "win32":
        return f"{stem}.dll"
    if sys.platform == "darwin":
        return f"lib{stem}.dylib"
    return f"lib{stem}.so"


def build_command(tensorrt: bool = False) -> str:
    """The command that builds the libraries into a folder the loader searches (the TensorRT plugin needs
    TensorRT's prefix unless it is in the system paths, as on JetPack)."""
    return "edgedistill plugins build" + (" --tensorrt-root <TensorRT prefix>" if tensorrt else "")


def in_checkout() -> bool:
    """Whether edgedistill runs from a source checkout (the repository's CMake project beside the package)."""
    return (REPO_ROOT / "CMakeLists.txt").is_file() and (REPO_ROOT / "pyproject.toml").is_file()


def search_paths(stem: str) -> list[Path]:
    """Candidate files for library `stem`, in search order."""
    from edgedistill.plugins.build import default_build_dir

    name = library_filename(stem)
    candidates: list[Path] = []
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env)
        candidates += [root] if root.name == name else [root / name, root / "lib" / name]
    if in_checkout():
        candidates.append(REPO_ROOT / "build" / "lib" / name)
    candidates += [default_build_dir() / "lib" / name, Path(__file__).parent / "lib" / name]
    return candidates


def find_library(stem: str) -> Path:
    """Path of the built library `stem`.

    Raises:
        MissingDependencyError: not built; the message lists where it looked and the build command.
    """
    candidates = search_paths(stem)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise MissingDependencyError(
        f"native library {library_filename(stem)} not found (looked in: {looked}); "
        f"build it with: {build_command(stem == PLUGIN_LIBRARY)}  (or set {ENV_VAR} to the folder holding it)"
    )


def _declare(lib: ctypes.CDLL) -> None:
    problem = ctypes.POINTER(EdfaProblem)
    ptr = ctypes.c_void_p
    lib.edfa_abi_version.restype = ctypes.c_int32
    lib.edfa_error_string.restype = ctypes.c_char_p
    lib.edfa_error_string.argtypes = [ctypes.c_int32]
    lib.edfa_validate.restype = ctypes.c_int32
    lib.edfa_validate.argtypes = [problem]
    lib.edfa_host_attention.restype = ctypes.c_int32
    lib.edfa_host_attention.argtypes = [problem, ptr, ptr, ptr, ptr, ptr]
    lib.edfa_host_attention_tensor_core.restype = ctypes.c_int32
    lib.edfa_host_attention_tensor_core.argtypes = [problem, ptr, ptr, ptr, ptr, ptr]
    lib.edfa_cuda_attention.restype = ctypes.c_int32
    lib.edfa_cuda_attention.argtypes = [problem, ptr, ptr, ptr, ptr, ptr, ptr]
    lib.edfa_cuda_kernel_name.restype = ctypes.c_char_p
    lib.edfa_cuda_kernel_name.argtypes = [problem, ptr, ptr, ptr, ptr]
    lib.edfa_round_trip.restype = ctypes.c_int32
    lib.edfa_round_trip.argtypes = [ctypes.c_int32, ptr, ptr, ctypes.c_int64]
    lib.edfa_has_cuda.restype = ctypes.c_int32
    for fn in ("edfa_spec_name", "edfa_spec_version", "edfa_spec_namespace"):
        getattr(lib, fn).restype = ctypes.c_char_p
    for fn in ("edfa_spec_field_name", "edfa_spec_field_type"):
        getattr(lib, fn).restype = ctypes.c_char_p
        getattr(lib, fn).argtypes = [ctypes.c_int32]
    lib.edfa_spec_field_count.restype = ctypes.c_int32
    lib.edfa_spec_head_size_count.restype = ctypes.c_int32
    lib.edfa_spec_head_size.restype = ctypes.c_int32
    lib.edfa_spec_head_size.argtypes = [ctypes.c_int32]


@cache
def load_kernel_library() -> ctypes.CDLL:
    """The kernel library (host reference + CUDA launch) loaded with ctypes, signatures declared.

    Raises:
        MissingDependencyError: the library is not built, or was built from a different ABI version.
    """
    path = find_library(KERNEL_LIBRARY)
    lib = ctypes.CDLL(str(path))
    _declare(lib)
    version = lib.edfa_abi_version()
    if version != ABI_VERSION:
        raise MissingDependencyError(
            f"{path} has ABI version {version}, this edgedistill expects {ABI_VERSION}; rebuild with: {build_command()}"
        )
    return lib


def error_message(lib: ctypes.CDLL, code: int) -> str:
    """The library's text for return code `code`."""
    text: bytes = lib.edfa_error_string(code)
    return text.decode()


def load_tensorrt_plugin() -> Path:
    """Register the FusedMultiHeadAttention TensorRT plugin with TensorRT's plugin registry; returns the library path.

    Uses ``IPluginRegistry.load_library`` where TensorRT has it (>= 8.6) and otherwise loads the library globally
    and calls its ``edgedistill_register_plugins`` entry point (TensorRT 8.5, JetPack 5).

    Raises:
        MissingDependencyError: the ``tensorrt`` package or the plugin library is missing, or the plugin did not
            register.
    """
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise MissingDependencyError(
            "the TensorRT plugin needs the `tensorrt` Python package (pip install 'edgedistill[tensorrt]', "
            "or JetPack's python3-libnvinfer)"
        ) from exc
    try:
        path = find_library(PLUGIN_LIBRARY)
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            f"{exc}; the plugin target is only configured when TensorRT is found: "
            f"{build_command(tensorrt=True)}"
        ) from None
    registry = trt.get_plugin_registry()
    if hasattr(registry, "load_library"):
        registry.load_library(str(path))
    else:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL).edgedistill_register_plugins()
    spec = fused_attention_spec()
    lookup = getattr(registry, "get_creator", None) or registry.get_plugin_creator
    if lookup(spec["name"], spec["version"], spec["namespace"]) is None:
        raise MissingDependencyError(
            f"{path} loaded but TensorRT has no creator {spec['namespace']}::{spec['name']} v{spec['version']}; "
            f"rebuild it against this TensorRT with: {build_command(tensorrt=True)}"
        )
    return path
