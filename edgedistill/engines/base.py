"""The :class:`Session` protocol and ``open_session``, which picks the backend for an artifact's kind."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from edgedistill.artifacts import Artifact
from edgedistill.config import BACKENDS, suggest
from edgedistill.errors import InputError

BACKEND_FOR_KIND = {"hf": "torch", "onnx": "onnxruntime"}


@runtime_checkable
class Session(Protocol):
    """A loaded model: ``run`` maps input names to int64 arrays (B, S) and returns outputs by name."""

    backend: str
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def check_backend(artifact: Artifact, backend: str) -> None:
    """Raise InputError if ``backend`` is unknown or cannot run an artifact of this kind."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend '{backend}'; {suggest(backend, BACKENDS)}")
    expected = BACKEND_FOR_KIND[artifact.kind]
    if backend != expected:
        raise InputError(
            f"artifact '{artifact.name}' is a {artifact.kind} model, which backend '{backend}' cannot run; "
            f"use backend '{expected}'"
        )


def open_session(artifact: Artifact, backend: str | None = None, threads: int | None = None) -> Session:
    """Load ``artifact`` for inference.

    Args:
        backend: ``torch`` (hf folders) or ``onnxruntime`` (onnx files); default by the artifact's kind.
        threads: intra-op threads; the backend's default when None.
    Raises:
        InputError: unknown or mismatched backend, or a model that cannot be loaded.
    """
    if artifact.kind not in BACKEND_FOR_KIND:
        raise InputError(f"artifact '{artifact.name}' has unknown kind '{artifact.kind}'; expected hf or onnx")
    backend = backend or BACKEND_FOR_KIND[artifact.kind]
    check_backend(artifact, backend)
    if backend == "torch":
        from edgedistill.engines.torch_session import TorchSession

        return TorchSession(artifact.path, artifact.task, threads)
    from edgedistill.engines.ort_session import OrtSession

    return OrtSession(artifact.path, threads)
