"""On-disk size of an artifact's weights, the number a device's storage budget cares about."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact

MB = 1024 * 1024
HF_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


def graph_tensors(graph: Any) -> Iterator[Any]:
    """Initializers and tensor attributes of ``graph`` and its subgraphs (If/Loop bodies)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from graph_tensors(attr.g)
            for sub in attr.graphs:
                yield from graph_tensors(sub)


def onnx_external_files(path: Path) -> set[Path]:
    """The external-data files an ONNX model refers to (weights stored next to the graph)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return set()
    files = set()
    for tensor in graph_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location":
                    files.add(path.parent / entry.value)
    return files


def model_file_mb(artifact: Artifact) -> float:
    """Megabytes (MiB) of weights: the safetensors files of an hf folder, or an .onnx file plus its external data."""
    path = artifact.path
    if artifact.kind == "onnx":
        files = {path, *onnx_external_files(path)}
    else:
        files = set()
        for pattern in HF_WEIGHT_PATTERNS:
            files = {p for p in path.glob(pattern)}
            if files:
                break
    return sum(f.stat().st_size for f in files if f.is_file()) / MB
