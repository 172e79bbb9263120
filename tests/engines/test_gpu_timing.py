"""GPU timing paths: CUDA events with H2D/D2H apart, CUDA graphs, ORT CUDA EP via IO binding (needs a GPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgedistill.artifacts import Artifact
from edgedistill.bench.inputs import make_feeds
from edgedistill.bench.probe import Probe
from edgedistill.config import Shape
from edgedistill.engines import SessionOptions, open_session
from edgedistill.tasks.inputs import text_spec


def cuda_torch() -> bool:
    import torch

    return torch.cuda.is_available()


def cuda_ort() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not cuda_torch(), reason="needs torch with CUDA and a GPU")
@pytest.mark.parametrize("graphs", [False, True])
def test_torch_cuda_events(tiny_bert: Path, graphs: bool) -> None:
    cpu = open_session(Artifact("t", "hf", tiny_bert), threads=1)
    gpu = open_session(Artifact("t", "hf", tiny_bert), options=SessionOptions(device="cuda", cuda_graphs=graphs))
    feeds = make_feeds(Shape(batch=2, seq=16), text_spec(50))
    for _ in range(2):  # the second call replays the captured graph
        out, parts = gpu.timed_run(feeds)  # type: ignore[attr-defined]
        np.testing.assert_allclose(out["sentence_embedding"], cpu.run(feeds)["sentence_embedding"], atol=1e-4)
        assert parts["compute_s"] > 0 and parts["h2d_s"] >= 0 and parts["d2h_s"] >= 0
    probe = Probe(gpu, feeds, split_copies=True)
    assert probe.timer == "cuda_event" and probe() > 0 and len(probe.parts["h2d_s"]) == 1


@pytest.mark.skipif(not cuda_ort(), reason="needs onnxruntime-gpu with a GPU")
def test_ort_cuda_iobinding(tiny_bert: Path, tmp_path: Path) -> None:
    from test_sessions import export

    onnx = export(tiny_bert, tmp_path)
    session = open_session(Artifact("o", "onnx", onnx), options=SessionOptions(providers=("cuda",)))
    feeds = make_feeds(Shape(batch=2, seq=16), text_spec(50))
    out, parts = session.timed_run(feeds)  # type: ignore[attr-defined]
    np.testing.assert_allclose(out["sentence_embedding"], session.run(feeds)["sentence_embedding"], atol=1e-5)
    assert set(parts) == {"h2d_s", "compute_s", "d2h_s"}
