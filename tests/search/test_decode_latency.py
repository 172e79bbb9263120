"""The decode roofline of a remote target, on a hand-built decoder-shaped graph whose bytes are counted here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgedistill.search.decode_latency import cache_bytes, estimated
from edgedistill.targets.loader import load_target

HIDDEN, FFN, VOCAB, KV_HEADS, HEAD = 64, 128, 100, 2, 16


def decoder_graph(path: Path, weight_dtype: type = np.float32) -> Path:
    """ids -> Gather(table) -> MatMul(W); one layer's KV cache as inputs (batch x KV heads x past x head size)."""
    table = numpy_helper.from_array(np.zeros((VOCAB, HIDDEN), np.float32), "table")
    weight = numpy_helper.from_array(np.zeros((HIDDEN, FFN), weight_dtype), "w")
    past = [helper.make_tensor_value_info(f"past_key_values.0.{k}", TensorProto.FLOAT, [1, KV_HEADS, "past", HEAD])
            for k in ("key", "value")]
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["h"]), helper.make_node("MatMul", ["h", "w"], ["y"])],
        "decoder", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, 1]), *past],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, FFN])], [table, weight])
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_the_cache_read_per_step_is_every_layers_keys_and_values(tmp_path: Path) -> None:
    graph = decoder_graph(tmp_path / "d.onnx")
    assert cache_bytes(graph, 10) == 2 * KV_HEADS * HEAD * 10 * 4


def test_the_roofline_is_the_slower_of_reading_and_computing(tmp_path: Path) -> None:
    float_graph = decoder_graph(tmp_path / "fp32.onnx")
    small = decoder_graph(tmp_path / "int8.onnx", np.int8)  # a stand-in for a graph whose weights are 1 byte
    target = load_target("jetson-orin-nano-8gb")
    found = estimated([("a-fp32", float_graph, float_graph, "fp32"), ("a-int8", small, float_graph, "int8")],
                      target.name, 16)
    cache = 2 * KV_HEADS * HEAD * 8 * 4  # at the mean context of tg16
    flops = 2 * HIDDEN * FFN  # the table is only gathered from: neither read whole nor multiplied
    for name, weight_bytes, peak in (("a-fp32", 4, target.peak.of("fp32")), ("a-int8", 1, target.peak.of("fp16"))):
        seconds = max((HIDDEN * FFN * weight_bytes + cache) / (target.memory_bandwidth_gbs * 1e9),
                      flops / (peak * 1e12))
        assert found[name] == {"tg16": pytest.approx(1e3 * seconds)}
    assert found["a-int8"]["tg16"] < found["a-fp32"]["tg16"]
