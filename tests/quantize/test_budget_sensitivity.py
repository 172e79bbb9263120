"""Sensitivity ranking and the accuracy-budget search on the tiny BERT."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from support.quantize import op_counts

from edgedistill.config import QuantizeBudget, quantize_step
from edgedistill.errors import InputError
from edgedistill.quantize import stage
from edgedistill.quantize.budget import Mix, choose, meets
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.quality import Quality

FIDELITY = QuantizeBudget(metric="fidelity_cosine", min=0.99)


def budget_step(minimum: float) -> quantize_step:
    return quantize_step(mode="static-int8", group_by="layer",
                        budget={"metric": "fidelity_cosine", "min": minimum})


def test_sensitivity_report(float_model, quant_data, tmp_path):
    art = stage.run(quantize_step(mode="static-int8", group_by="layer", sensitivity=True), float_model, tmp_path,
                    quant_data)
    rows = json.loads((tmp_path / "sensitivity.json").read_text())
    assert [r["label"] for r in rows] == art.meta["sensitivity"]
    assert sorted(r["label"] for r in rows) == ["layer.0", "layer.1"]
    assert rows[0]["drop"] >= rows[1]["drop"] and all(0 <= r["drop"] < 0.01 for r in rows)
    assert (tmp_path / "sensitivity.png").stat().st_size > 1000
    assert "| 1 | layer." in (tmp_path / "sensitivity.md").read_text()
    assert "budget" not in art.meta


def test_easy_budget_keeps_everything_int8(float_model, quant_data, tmp_path):
    art = stage.run(budget_step(0.5), float_model, tmp_path, quant_data)
    record = art.meta["budget"]
    assert record["met"] and record["kept_float"] == [] and len(record["steps"]) == 1
    assert record["steps"][0]["p50_ms_1x128"] > 0 and record["float_p50_ms_1x128"] > 0
    assert op_counts(art.path)["QuantizeLinear"] == 8


def test_impossible_budget_keeps_best_mix_and_warns(float_model, quant_data, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        art = stage.run(budget_step(1.0001), float_model, tmp_path, quant_data)
    record = art.meta["budget"]
    assert not record["met"] and len(record["steps"]) == 3  # 0, 1, 2 layers in float
    assert len(record["kept_float"]) < 2 and op_counts(art.path)["QuantizeLinear"] > 0
    assert "cannot be met even with every group in float" in caplog.text


def test_budget_needs_eval_texts(float_model, quant_data, tmp_path):
    data = QuantizeData(quant_data.calibration_texts)
    with pytest.raises(InputError, match="need evaluation texts"):
        stage.run(budget_step(0.9), float_model, tmp_path, data)


def test_sts_budget_needs_pairs(float_model, quant_data, tmp_path):
    step = quantize_step(mode="static-int8", budget={"metric": "sts_drop", "max": 0.3})
    with pytest.raises(InputError, match="sts_drop budget needs STS pairs"):
        stage.run(step, float_model, tmp_path, quant_data)


def mix(kept: list[str], fidelity: float, sts: float | None = None, nodes: int = 4) -> Mix:
    return Mix(kept, Path("x"), Quality(fidelity, sts), nodes)


def test_choose_first_mix_meeting_budget():
    mixes = [mix([], 0.97), mix(["a"], 0.985), mix(["a", "b"], 0.992), mix(["a", "b", "c"], 0.999)]
    chosen, met = choose(mixes, FIDELITY, None)
    assert met and chosen.kept_float == ["a", "b"]


def test_sts_drop_budget():
    budget = QuantizeBudget(metric="sts_drop", max=0.3)
    assert meets(budget, Quality(0.9, 80.1), float_sts=80.3)
    assert not meets(budget, Quality(0.99, 79.9), float_sts=80.3)
