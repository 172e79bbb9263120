"""Presets fill only what the user did not set; the step's label and budget validation."""

from __future__ import annotations

import pytest

from edgedistill.config import quantize_step
from edgedistill.quantize.presets import TRT_OPS, resolve


def test_preset_fills_defaults():
    s = resolve(quantize_step(mode="static-int8", preset="avx2"))
    assert s.reduce_range and not s.symmetric_activations and s.per_channel
    assert resolve(quantize_step(mode="static-int8", preset="arm64")).symmetric_activations
    assert not resolve(quantize_step(mode="static-int8", preset="avx512-vnni")).reduce_range


def test_user_options_win_over_preset():
    s = resolve(quantize_step(mode="static-int8", preset="avx2", reduce_range=False, calibration="entropy"))
    assert not s.reduce_range and s.calibration == "entropy"


def test_trt_mode_uses_tensorrt_preset():
    s = resolve(quantize_step(mode="trt-int8"))
    assert s.symmetric_activations and s.weight_qdq_pair and s.op_types == TRT_OPS


def test_no_preset_is_the_step():
    s = resolve(quantize_step(mode="static-int8", calibration="percentile", percentile=99.9))
    assert (s.calibration, s.percentile, s.reduce_range) == ("percentile", 99.9, False)


def test_labels_and_backward_compatible_default():
    assert quantize_step(mode="dynamic-int8").label == "dynamic-int8"
    step = quantize_step(mode="static-int8", preset="avx512-vnni", budget={"metric": "fidelity_cosine", "min": 0.99})
    assert step.label == "static-int8-avx512-vnni-minmax-budget"


@pytest.mark.parametrize("bad,match", [
    ({"preset": "avx3"}, "unknown quantization preset 'avx3'"),
    ({"budget": {"metric": "sts_drop"}}, "budget metric sts_drop needs 'max'"),
    ({"calibration": "kl"}, "calibration"),
    ({"calibration_size": 0}, "calibration_size"),
])
def test_bad_options_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        quantize_step(mode="static-int8", **bad)


def test_presets_are_named_constructors_and_yaml_alike():
    from edgedistill.config import StaticInt8

    assert StaticInt8.avx2() == quantize_step(mode="static-int8", preset="avx2")
    assert StaticInt8.avx512_vnni(calibration="entropy").label == "static-int8-avx512-vnni-entropy"
    assert StaticInt8.arm64().symmetric_activations and not StaticInt8.avx512_vnni().reduce_range


def test_each_mode_takes_only_its_options(tmp_path):
    from edgedistill.config import parse_config
    from edgedistill.errors import ConfigError

    base = {"name": "t", "teacher": {"path": str(tmp_path)}, "student": {"hf_config": str(tmp_path)},
            "data": {"train": {"source": "python-docs"}}}
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="unknown quantization mode 'dynamc-int8'; did you mean 'dynamic-int8'"):
        parse_config({**base, "quantize": [{"mode": "dynamc-int8"}]}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"quantize\.0\.dynamic-int8\.preset: unknown key"):
        parse_config({**base, "quantize": [{"mode": "dynamic-int8", "preset": "avx2"}]}, base_dir=tmp_path)
    assert parse_config({**base, "quantize": []}, base_dir=tmp_path).quantize == []
