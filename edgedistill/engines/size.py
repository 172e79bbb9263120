"""On-disk size of an artifact's weights, the number a device's storage budget cares about (MB of 2^20 bytes)."""

from __future__ import annotations

from edgedistill.artifacts import Artifact
from edgedistill.models.onnx_file import MB, model_bytes

HF_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def model_file_mb(artifact: Artifact) -> float:
    """MB of weights: the safetensors files of an hf folder, or an .onnx file plus its external data."""
    path = artifact.path
    if artifact.kind == "onnx":
        return model_bytes(path) / MB
    for pattern in HF_WEIGHT_PATTERNS:
        files = [p for p in path.glob(pattern) if p.is_file()]
        if files:
            return sum(f.stat().st_size for f in files) / MB
    return 0.0
