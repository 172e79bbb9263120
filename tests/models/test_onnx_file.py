"""Checking, inspecting and publishing ONNX files, on graphs built in the test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgedistill.errors import InputError
from edgedistill.models.onnx_file import (
    check_onnx_file,
    external_data_files,
    is_quantized,
    onnx_io,
    publish_onnx,
    remove_onnx,
)


def matmul_model(op: str = "MatMul") -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", 3])
    w = numpy_helper.from_array(np.ones((4, 3), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node(op, ["x", "w"], ["y"])], "g", [x], [y], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_valid_model(tmp_path):
    onnx.save(matmul_model(), str(tmp_path / "m.onnx"))
    assert check_onnx_file(tmp_path / "m.onnx").graph.node[0].op_type == "MatMul"
    inputs, outputs = onnx_io(tmp_path / "m.onnx")
    assert inputs == [("x", "float32", ["batch", "sequence", 4])]  # the initializer is not an input
    assert outputs == [("y", "float32", ["batch", "sequence", 3])]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="ONNX model not found: .*nope.onnx"):
        check_onnx_file(tmp_path / "nope.onnx")


@pytest.mark.parametrize("content", [b"hello, I am a text file\n", b"\x00\x01garbage" * 20])
def test_not_a_model(tmp_path, content):
    (tmp_path / "m.onnx").write_bytes(content)
    with pytest.raises(InputError, match=r"m\.onnx is not an ONNX model \(") as err:
        check_onnx_file(tmp_path / "m.onnx")
    assert "\n" not in str(err.value)


def test_empty_file_fails_the_checker(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"")  # parses as an empty proto
    with pytest.raises(InputError, match="is not a valid ONNX model: .*ir_version"):
        check_onnx_file(tmp_path / "m.onnx")


def test_is_quantized():
    assert not is_quantized(matmul_model())
    assert is_quantized(matmul_model("MatMulInteger"))
    assert is_quantized(matmul_model("QLinearMatMul"))


def test_publish_and_remove_with_external_data(tmp_path):
    staging, dest = tmp_path / "staging", tmp_path / "out"
    staging.mkdir()
    onnx.save(matmul_model(), str(staging / "model.onnx"), save_as_external_data=True,
              location="model.onnx.data", size_threshold=0)
    assert external_data_files(staging / "model.onnx") == [staging / "model.onnx.data"]
    publish_onnx(staging / "model.onnx", dest / "model.onnx")
    assert sorted(p.name for p in dest.iterdir()) == ["model.onnx", "model.onnx.data"]
    assert list(staging.iterdir()) == []
    loaded = onnx.load(str(dest / "model.onnx"))
    assert numpy_helper.to_array(loaded.graph.initializer[0]).sum() == 12
    remove_onnx(dest / "model.onnx")
    assert list(dest.iterdir()) == []


def test_publish_needs_the_same_name(tmp_path: Path):
    onnx.save(matmul_model(), str(tmp_path / "a.onnx"))
    with pytest.raises(ValueError, match="must be named like"):
        publish_onnx(tmp_path / "a.onnx", tmp_path / "out" / "b.onnx")
