"""The ONNX opset a deployment target wants, when the user does not name one.

    TensorRT >= 10.14          23  imports the standard ``Attention`` op (opset 23): native fused attention
    TensorRT 10.0 - 10.13      17  JetPack 6.x (10.3) parses 17-19; nothing our encoders use needs more than
                                   17 (LayerNormalization), and attention goes to our plugin node anyway
    TensorRT 8.x               17  JetPack 5 (8.5) parses up to opset 17
    CPU targets / ONNX Runtime 20  the exporter's default; ONNX Runtime runs every opset up to 23, and
                                   ``com.microsoft.MultiHeadAttention`` (the ``ort`` form) does not depend on it

A request for the ``onnx`` attention form needs opset 23 whatever the target; on TensorRT below 10.14 it is
refused, because that parser cannot import ``Attention``.
"""

from __future__ import annotations

import re

from edgedistill.config.export import ATTENTION_OPSET, OPSET_MAX, OPSET_MIN, ORT_OPSET, TENSORRT_OPSET
from edgedistill.errors import InputError
from edgedistill.targets import Target, load_target
from edgedistill.targets.defaults import NATIVE_ATTENTION_SINCE, parse_version

RUNTIME_NAMES = {"ort", "onnxruntime", "cpu"}


def opset_for_tensorrt(version: str) -> int:
    """23 for TensorRT >= 10.14 (native ``Attention``), 17 below.

    Raises:
        InputError: ``version`` is not a version number, or is older than TensorRT 8 (no opset-17 parser).
    """
    parsed = parse_version(version)
    if not parsed:
        raise InputError(f"'{version}' is not a TensorRT version (expected e.g. 10.3 or 8.5.2)")
    if parsed[:2] >= NATIVE_ATTENTION_SINCE:
        return ATTENTION_OPSET
    if parsed[0] < 8:
        raise InputError(f"TensorRT {version} cannot parse opset {OPSET_MIN} exports; TensorRT 8.5 or newer is needed")
    return TENSORRT_OPSET


def opset_for_form(form: str | None) -> int:
    """The opset for an export that will be fused into ``form`` when no target is named: 23 for the standard
    ``Attention`` (``onnx``), 17 for our plugin (it serves TensorRT 8.5-10.13, which parse 17), else ONNX Runtime's."""
    return {"onnx": ATTENTION_OPSET, "trt-plugin": TENSORRT_OPSET}.get(form or "", ORT_OPSET)


def opset_for(target: str | Target, tensorrt: str | None = None, form: str | None = None) -> int:
    """The opset to export with for ``target``.

    Args:
        target: a target name (``jetson-orin-nano-8gb``), a loaded :class:`Target`, a TensorRT version
            (``"10.3"``), or ``"ort"`` / ``"onnxruntime"`` / ``"cpu"`` for ONNX Runtime on a CPU.
        tensorrt: overrides the TensorRT version the target ships with (e.g. the one installed).
        form: the attention form that will be fused; ``"onnx"`` needs opset 23.
    Returns:
        An opset in 17..23.
    Raises:
        InputError: the ``onnx`` form on TensorRT below 10.14, or an unusable TensorRT version.
        ConfigError: no target of that name.
    """
    if isinstance(target, str) and target.lower() in RUNTIME_NAMES:
        version = None
    elif isinstance(target, str) and re.fullmatch(r"\d+(\.\d+)*", target.strip()):
        version = tensorrt or target
    else:
        device = target if isinstance(target, Target) else load_target(target)
        version = (tensorrt or device.tensorrt) if device.has_gpu else None  # a CPU target has no TensorRT
    opset = opset_for_tensorrt(version) if version else ORT_OPSET
    if form == "onnx":
        if version and opset < ATTENTION_OPSET:
            raise InputError(
                f"the 'onnx' attention form needs opset {ATTENTION_OPSET}, which TensorRT {version} cannot import "
                f"(native Attention needs TensorRT >= {'.'.join(map(str, NATIVE_ATTENTION_SINCE))}); "
                "use the 'trt-plugin' form"
            )
        opset = ATTENTION_OPSET
    assert OPSET_MIN <= opset <= OPSET_MAX
    return opset
