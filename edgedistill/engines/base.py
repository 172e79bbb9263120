"""The :class:`Session` protocol and ``open_session``, which picks the backend for an artifact's kind.

Backends: ``torch`` (Hugging Face folders; eager, ``torch.compile`` as an option, CPU or CUDA),
``onnxruntime`` (``.onnx`` files; CPU, CUDA and TensorRT execution providers) and ``tensorrt``
(serialized engines, run by :class:`edgedistill.trt.session.TrtSession`, imported only when asked for).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edgedistill.artifacts import Artifact
from edgedistill.config import suggest
from edgedistill.engines.options import SessionOptions
from edgedistill.errors import InputError, MissingDependencyError

ENGINE_BACKENDS = ("torch", "onnxruntime", "tensorrt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
BACKEND_FOR_KIND = {"hf": "torch", "onnx": "onnxruntime", "trt": "tensorrt"}


@runtime_checkable
class Session(Protocol):
    """A loaded model: ``run`` maps input names to int64 arrays (B, S) and returns outputs by name."""

    backend: str
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def kind_of(artifact: Artifact) -> str:
    """The artifact's kind; a file with an engine suffix counts as ``trt`` whatever it was labelled."""
    return "trt" if Path(artifact.path).suffix in ENGINE_SUFFIXES else artifact.kind


def check_backend(artifact: Artifact, backend: str) -> None:
    """Raise InputError if ``backend`` is unknown or cannot run an artifact of this kind."""
    if backend not in ENGINE_BACKENDS:
        raise InputError(f"unknown backend '{backend}'; {suggest(backend, list(ENGINE_BACKENDS))}")
    expected = BACKEND_FOR_KIND[kind_of(artifact)]
    if backend != expected:
        raise InputError(
            f"artifact '{artifact.name}' is a {kind_of(artifact)} model, which backend '{backend}' cannot run; "
            f"use backend '{expected}'"
        )


def open_trt(artifact: Artifact, options: SessionOptions) -> Session:
    """The TensorRT engine session, or a MissingDependencyError naming what to install."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "backend 'tensorrt' needs the TensorRT Python package: pip install 'edgedistill[tensorrt]' "
            "(on Jetson: apt-get install python3-libnvinfer)") from None
    try:
        from edgedistill.trt.session import TrtSession
    except ImportError as err:
        raise MissingDependencyError(f"backend 'tensorrt' is not available in this edgedistill build ({err})") from None
    return TrtSession(Path(artifact.path))  # type: ignore[no-any-return]


def open_session(artifact: Artifact, backend: str | None = None, threads: int | None = None,
                 options: SessionOptions | None = None) -> Session:
    """Load ``artifact`` for inference.

    Args:
        backend: ``torch`` (hf folders), ``onnxruntime`` (onnx files) or ``tensorrt`` (engine files);
            default by the artifact's kind.
        threads: intra-op threads; the backend's default when None (overrides ``options.threads``).
        options: device, execution providers, inter-op threads, ``torch.compile``, CUDA graphs.
    Raises:
        InputError: unknown or mismatched backend, or a model that cannot be loaded.
        MissingDependencyError: the backend or execution provider is not installed (names the package).
    """
    kind = kind_of(artifact)
    if kind not in BACKEND_FOR_KIND:
        raise InputError(f"artifact '{artifact.name}' has unknown kind '{artifact.kind}'; expected hf, onnx or trt")
    backend = backend or BACKEND_FOR_KIND[kind]
    check_backend(artifact, backend)
    opts = (options or SessionOptions()).with_threads(threads)
    if backend == "torch":
        from edgedistill.engines.torch_session import TorchSession

        return TorchSession(artifact.path, artifact.task, opts.threads, opts)
    if backend == "tensorrt":
        return open_trt(artifact, opts)
    from edgedistill.engines.ort_session import OrtSession

    return OrtSession(artifact.path, opts.threads, opts)
