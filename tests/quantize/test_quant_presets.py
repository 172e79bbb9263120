"""Presets fill only what the user did not set; the step's label and budget validation."""

from __future__ import annotations

import pytest

from edgedistill.config import QuantizeStep
from edgedistill.quantize.presets import TRT_OPS, resolve


def test_preset_fills_defaults():
    s = resolve(QuantizeStep(mode="static-int8", preset="avx2"))
    assert s.reduce_range and not s.symmetric_activations and s.per_channel
    assert resolve(QuantizeStep(mode="static-int8", preset="arm64")).symmetric_activations
    assert not resolve(QuantizeStep(mode="static-int8", preset="avx512-vnni")).reduce_range


def test_user_options_win_over_preset():
    s = resolve(QuantizeStep(mode="static-int8", preset="avx2", reduce_range=False, calibration="entropy"))
    assert not s.reduce_range and s.calibration == "entropy"


def test_trt_mode_uses_tensorrt_preset():
    s = resolve(QuantizeStep(mode="trt-int8"))
    assert s.symmetric_activations and s.weight_qdq_pair and s.op_types == TRT_OPS


def test_no_preset_is_the_step():
    s = resolve(QuantizeStep(mode="static-int8", calibration="percentile", percentile=99.9))
    assert (s.calibration, s.percentile, s.reduce_range) == ("percentile", 99.9, False)


def test_labels_and_backward_compatible_default():
    assert QuantizeStep(mode="dynamic-int8").label == "dynamic-int8"
    step = QuantizeStep(mode="static-int8", preset="avx512-vnni", budget={"metric": "fidelity_cosine", "min": 0.99})
    assert step.label == "static-int8-avx512-vnni-minmax-budget"


@pytest.mark.parametrize("bad,match", [
    ({"preset": "avx3"}, "unknown quantization preset 'avx3'"),
    ({"budget": {"metric": "sts_drop"}}, "budget metric sts_drop needs 'max'"),
    ({"calibration": "kl"}, "calibration"),
    ({"calibration_size": 0}, "calibration_size"),
])
def test_bad_options_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        QuantizeStep(mode="static-int8", **bad)
