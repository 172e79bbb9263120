"""The tokenizer stored with an artifact."""

from __future__ import annotations

from typing import Any

from edgedistill.artifacts import Artifact
from edgedistill.errors import InputError


def load_tokenizer(artifact: Artifact) -> Any:
    """Load the tokenizer from ``meta["tokenizer"]``, an hf folder, or the folder holding the .onnx file.

    Raises:
        InputError: no usable tokenizer files there.
    """
    from transformers import AutoTokenizer

    folder = artifact.meta.get("tokenizer") or (artifact.path if artifact.kind == "hf" else artifact.path.parent)
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"no usable tokenizer next to artifact '{artifact.name}' in {folder}: "
                         f"{str(err).splitlines()[0]}") from None
