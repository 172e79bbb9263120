"""Real TensorRT build + run, compared with ONNX Runtime. Needs TensorRT and an NVIDIA GPU (marker `tensorrt`)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

pytestmark = pytest.mark.tensorrt


def local_target() -> str:
    """The target whose compute capability matches this GPU."""
    import torch

    from edgedistill.targets import list_targets

    major, minor = torch.cuda.get_device_capability()
    for t in list_targets():
        if t.compute_capability == f"{major}.{minor}":
            return t.name
    pytest.skip(f"no target with compute capability {major}.{minor}")


def test_engine_matches_onnxruntime(tmp_path):
    pytest.importorskip("tensorrt")
    from test_engine_plan import encoder

    from edgedistill.engines.ort_session import OrtSession
    from edgedistill.trt import BuildOptions
    from edgedistill.trt.builder import build
    from edgedistill.trt.session import TrtSession

    model = encoder()
    rng = np.random.default_rng(0)
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(rng.normal(size=(10, 4)).astype(np.float32),
                                                                    "table"))
    onnx.save(model, tmp_path / "model.onnx")
    built = build(tmp_path / "model.onnx", local_target(), tmp_path / "out", BuildOptions(precision="fp32"))
    feeds = {"input_ids": rng.integers(0, 10, size=(2, 16), dtype=np.int64)}
    got = TrtSession(built.engine).run(feeds)["emb"]
    want = OrtSession(tmp_path / "model.onnx").run(feeds)["emb"]
    np.testing.assert_allclose(got, want, atol=1e-5)
