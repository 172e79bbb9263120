"""ONNX Runtime dynamic INT8 quantization of the tiny BERT's ONNX export."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgedistill.artifacts import Artifact
from edgedistill.config import quantize_step
from edgedistill.errors import InputError
from edgedistill.quantize import ort as quantize

STEP = quantize_step(mode="dynamic-int8")


@pytest.fixture(scope="module")
def quantized(float_model: Artifact, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return quantize.dynamic_int8(STEP, float_model, tmp_path_factory.mktemp("int8"))


def ops(path: Path) -> Counter[str]:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def embed(path: Path, enc: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out: np.ndarray = session.run(None, enc)[0]
    return out


def test_uses_integer_matmuls(quantized, float_model):
    counts = ops(quantized.path)
    assert counts["MatMulInteger"] == 12  # q, k, v, attention out, two FFN per layer, 2 layers
    assert counts["DynamicQuantizeLinear"] > 0
    assert quantized.meta["size_mb"] < 0.5 * (float_model.path.stat().st_size / 1e6)
    assert quantized.name == "tiny-dynamic-int8" and quantized.kind == "onnx"
    meta = {p.key: p.value for p in onnx.load(str(quantized.path)).metadata_props}
    assert meta["edgedistill.quantization"] == "dynamic-int8"


def test_outputs_close_to_float(quantized, float_model, tiny_texts):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(quantized.path.parent)  # the folder is self-contained
    enc = dict(tokenizer(tiny_texts[:16], padding=True, return_tensors="np"))
    ref, got = embed(float_model.path, enc), embed(quantized.path, enc)
    cosine = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cosine.min() > 0.99  # measured ~0.99998 on this random-weight model


@pytest.mark.parametrize("per_channel,reduce_range", [(True, False), (False, True)])
def test_options(float_model, tmp_path, per_channel, reduce_range):
    step = quantize_step(mode="dynamic-int8", per_channel=per_channel, reduce_range=reduce_range)
    art = quantize.dynamic_int8(step, float_model, tmp_path)
    assert ops(art.path)["MatMulInteger"] == 12
    assert art.meta["per_channel"] is per_channel and art.meta["reduce_range"] is reduce_range


def test_already_quantized_is_rejected(quantized, tmp_path):
    with pytest.raises(InputError, match="is already quantized; quantize the float model"):
        quantize.dynamic_int8(STEP, quantized, tmp_path / "again")
    assert not (tmp_path / "again" / "model.onnx").exists()


def test_text_file_is_rejected(tmp_path):
    fake = tmp_path / "in" / "model.onnx"
    fake.parent.mkdir()
    fake.write_text("this is not a model\n")
    with pytest.raises(InputError, match="is not an ONNX model"):
        quantize.dynamic_int8(STEP, Artifact("fake", "onnx", fake), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_nothing_to_quantize_leaves_nothing(tmp_path, monkeypatch):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    src = tmp_path / "in" / "model.onnx"
    src.parent.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    monkeypatch.chdir(src.parent)  # ORT's pre-processing must not litter the working folder
    with pytest.raises(InputError, match="no MatMul/Gemm with constant weights"):
        quantize.dynamic_int8(STEP, Artifact("relu", "onnx", src), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert [p.name for p in src.parent.iterdir()] == ["model.onnx"]


def test_hf_artifact_is_rejected(tiny_bert, tmp_path):
    with pytest.raises(InputError, match="export it first"):
        quantize.dynamic_int8(STEP, Artifact("tiny", "hf", tiny_bert), tmp_path)
