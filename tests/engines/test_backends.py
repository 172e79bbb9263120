"""Backend selection: the TensorRT hook, execution providers that are not installed, pinned threads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgedistill.artifacts import Artifact
from edgedistill.engines import SessionOptions, open_session
from edgedistill.engines.base import kind_of
from edgedistill.engines.ort_session import provider_list
from edgedistill.errors import InputError, MissingDependencyError


def test_engine_file_goes_to_tensorrt(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\0" * 16)
    artifact = Artifact("e", "onnx", engine)
    assert kind_of(artifact) == "trt"
    with pytest.raises(InputError, match="use backend 'tensorrt'"):
        open_session(artifact, backend="onnxruntime")
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(MissingDependencyError, match=r"pip install 'edgedistill\[tensorrt\]'"):
            open_session(artifact)


def test_missing_execution_provider_names_the_package() -> None:
    with pytest.raises(MissingDependencyError, match="install onnxruntime-gpu for provider 'cuda'"):
        provider_list(("cuda",), ["CPUExecutionProvider"])
    with pytest.raises(InputError, match="unknown execution provider 'tpu'"):
        provider_list(("tpu",), ["CPUExecutionProvider"])
    assert provider_list(("cpu",), ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert provider_list(("cuda",), ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_threads_are_pinned_and_recorded(tiny_bert: Path) -> None:
    session = open_session(Artifact("t", "hf", tiny_bert), options=SessionOptions(threads=1))
    assert session.threads["intra_op"] == 1  # type: ignore[attr-defined]
    assert SessionOptions(threads=3).with_threads(None).threads == 3
    assert SessionOptions().with_threads(2).threads == 2


def test_cuda_device_without_cuda(tiny_bert: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(MissingDependencyError, match="CUDA build of torch"):
        open_session(Artifact("t", "hf", tiny_bert), options=SessionOptions(device="cuda"))
