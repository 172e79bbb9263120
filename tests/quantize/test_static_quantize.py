"""Static INT8 QDQ on the tiny BERT: calibration methods, the range cache, exclusions and bad input."""

from __future__ import annotations

import dataclasses

import onnx
import pytest
from support.quantize import embed, min_cosine, op_counts

from edgedistill.config import quantize_step
from edgedistill.errors import InputError
from edgedistill.quantize import stage, static
from edgedistill.quantize.data import QuantizeData

WEIGHT_MATMULS = 12  # q, k, v, attention out, two FFN per layer, 2 layers
ACTIVATION_QS = 8  # q, k and v share one quantized input: 4 per layer


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_calibrations_quantize_weight_matmuls(float_model, quant_data, tmp_path, calibration):
    step = quantize_step(mode="static-int8", preset="avx512-vnni", calibration=calibration)
    art = stage.run(step, float_model, tmp_path, quant_data)
    counts = op_counts(art.path)
    assert counts["QuantizeLinear"] == ACTIVATION_QS  # activations only: weights are stored int8
    assert counts["DequantizeLinear"] == ACTIVATION_QS + WEIGHT_MATMULS
    assert art.meta["calibration"] == calibration and art.name.endswith(f"avx512-vnni-{calibration}")
    texts = quant_data.eval_texts[:16]
    assert min_cosine(embed(float_model.path, texts), embed(art.path, texts)) > 0.99


def test_ranges_are_cached_and_reused(float_model, quant_data, tmp_path, monkeypatch):
    data = dataclasses.replace(quant_data, cache_dir=tmp_path / "cache")
    step = quantize_step(mode="static-int8", preset="avx2")
    first = stage.run(step, float_model, tmp_path / "a", data)
    assert len(list((tmp_path / "cache").glob("minmax-*.json"))) == 1

    def no_calibration(*args, **kwargs):
        raise AssertionError("calibrated again despite the cache")

    monkeypatch.setattr(static, "SampleBatches", no_calibration)
    second = stage.run(step, float_model, tmp_path / "b", data)
    texts = quant_data.eval_texts[:8]
    assert min_cosine(embed(first.path, texts), embed(second.path, texts)) > 0.999999


def test_symmetric_activations_have_zero_zero_points(float_model, quant_data, tmp_path):
    art = stage.run(quantize_step(mode="static-int8", preset="arm64"), float_model, tmp_path, quant_data)
    model = onnx.load(str(art.path))
    zps = {i.name: i for i in model.graph.initializer if i.name.endswith("zero_point")}
    assert zps and all(z.data_type == onnx.TensorProto.INT8 for z in zps.values())
    assert all(not any(onnx.numpy_helper.to_array(z).ravel()) for z in zps.values())


def test_excluded_group_stays_float(float_model, quant_data, tmp_path):
    step = quantize_step(mode="static-int8", exclude=["encoder.layer.0.output.dense"])
    art = stage.run(step, float_model, tmp_path, quant_data)
    assert op_counts(art.path)["QuantizeLinear"] == ACTIVATION_QS - 1
    assert op_counts(art.path)["DequantizeLinear"] == ACTIVATION_QS - 1 + WEIGHT_MATMULS - 1


def test_layer_groups(float_model, quant_data, tmp_path):
    step = quantize_step(mode="static-int8", group_by="layer", exclude=["layer.1"])
    art = stage.run(step, float_model, tmp_path, quant_data)
    assert op_counts(art.path)["QuantizeLinear"] == ACTIVATION_QS // 2


@pytest.mark.parametrize("texts,match", [
    ([], "needs at least 8 calibration texts, got 0"),
    (["a dog", " ", "a cat"], "needs at least 8 calibration texts, got 2"),
])
def test_too_few_calibration_texts(float_model, tmp_path, texts, match):
    with pytest.raises(InputError, match=match):
        stage.run(quantize_step(mode="static-int8"), float_model, tmp_path, QuantizeData(texts))
    assert not (tmp_path / "model.onnx").exists()


def test_no_data_is_an_error(float_model, tmp_path):
    with pytest.raises(InputError, match="calibration texts"):
        stage.run(quantize_step(mode="static-int8"), float_model, tmp_path)


def test_unknown_exclusion_names_the_groups(float_model, quant_data, tmp_path):
    with pytest.raises(InputError, match="'layer.9' is not a quantizable node or group; groups are: encoder"):
        stage.run(quantize_step(mode="static-int8", exclude=["layer.9"]), float_model, tmp_path, quant_data)


def test_already_quantized_is_rejected(float_model, quant_data, tmp_path):
    art = stage.run(quantize_step(mode="static-int8"), float_model, tmp_path / "q", quant_data)
    with pytest.raises(InputError, match="already quantized"):
        stage.run(quantize_step(mode="static-int8"), art, tmp_path / "again", quant_data)


def test_histogram_calibration_with_uneven_batches(float_model, tiny_texts, tmp_path):
    """Entropy/percentile stack all batches: texts of different lengths and a short last batch must work."""
    data = QuantizeData(calibration_texts=tiny_texts[:21], eval_texts=tiny_texts[40:], batch_size=8)
    art = stage.run(quantize_step(mode="static-int8", calibration="percentile"), float_model, tmp_path, data)
    assert op_counts(art.path)["QuantizeLinear"] == ACTIVATION_QS
