"""The preprocessor (tokenizer or image processor) stored with an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact
from edgedistill.errors import InputError


def preprocessor_folder(artifact: Artifact) -> Path:
    """``meta["tokenizer"]``, an hf folder itself, or the folder holding the .onnx file."""
    return Path(artifact.meta.get("tokenizer") or (artifact.path if artifact.kind == "hf" else artifact.path.parent))


def load_preprocessor(artifact: Artifact) -> Any:
    """The tokenizer (text tasks) or image processor (image tasks) beside ``artifact``.

    Raises:
        InputError: no usable preprocessing files there.
    """
    from edgedistill.tasks import get_task

    folder = preprocessor_folder(artifact)
    try:
        return get_task(artifact.task).load_preprocessor(folder)
    except InputError as err:
        raise InputError(f"artifact '{artifact.name}': {err}") from None
