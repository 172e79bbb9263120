"""The opset chosen by the deployment target."""

from __future__ import annotations

import pytest

from edgedistill.errors import ConfigError, InputError
from edgedistill.export.opset import OPSET_MAX, OPSET_MIN, opset_for, opset_for_tensorrt
from edgedistill.targets import list_targets, load_target


@pytest.mark.parametrize("target,opset", [
    ("jetson-xavier-nx", 17),  # JetPack 5.1, TensorRT 8.5.2
    ("jetson-orin-nano-8gb", 17),  # JetPack 6.2, TensorRT 10.3
    ("jetson-agx-thor", 17),  # TensorRT 10.13: one below native Attention
    ("rtx-4090", 23),  # TensorRT 10.15
    ("x86-64-avx2", 20),  # ONNX Runtime on a CPU
    ("arm64-cpu", 20),
])
def test_targets(target, opset):
    assert opset_for(target) == opset
    assert opset_for(load_target(target)) == opset


@pytest.mark.parametrize("version,opset", [
    ("8.5.2", 17), ("8.6.1", 17), ("10.3", 17), ("10.13.3", 17), ("10.14", 23), ("10.15.1", 23), ("11.0", 23),
])
def test_tensorrt_versions(version, opset):
    assert opset_for(version) == opset == opset_for_tensorrt(version)


def test_runtimes_and_overrides():
    assert opset_for("ort") == opset_for("onnxruntime") == 20
    assert opset_for("jetson-orin-nano-8gb", tensorrt="10.14") == 23  # a newer TensorRT installed on the board
    assert opset_for("x86-64-avx2", tensorrt="10.3") == 20  # a CPU target has no TensorRT to honour


def test_onnx_form_needs_23():
    assert opset_for("ort", form="onnx") == 23 and opset_for("h100", form="onnx") == 23
    with pytest.raises(InputError, match=r"needs opset 23, which TensorRT 10\.3 cannot import"):
        opset_for("jetson-orin-nx-16gb", form="onnx")


def test_every_target_gets_an_opset_in_range():
    assert all(OPSET_MIN <= opset_for(t) <= OPSET_MAX for t in list_targets())


def test_bad_input():
    with pytest.raises(ConfigError, match="jetson-orin-nano"):
        opset_for("jetson-orin-nan")
    with pytest.raises(InputError, match="TensorRT 7.2"):
        opset_for("7.2")
