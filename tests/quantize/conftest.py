"""Fixtures for the quantize tests: the tiny BERT exported to ONNX once, and texts to calibrate and evaluate on."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgedistill.artifacts import Artifact
from edgedistill.quantize.data import QuantizeData


@pytest.fixture(scope="session")
def float_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    """The tiny BERT's FP32 ONNX export with its tokenizer next to it (shared, do not modify)."""
    from edgedistill.config import ExportConfig
    from edgedistill.export.exporter import export_onnx
    from edgedistill.models.task_model import load_task_model
    from edgedistill.models.tokenizer_files import copy_preprocessor_files

    out = tmp_path_factory.mktemp("float")
    model, tokenizer = load_task_model(tiny_bert, "sentence-embedding")
    export_onnx(model, tokenizer, ExportConfig(), out / "model.onnx")
    copy_preprocessor_files(tiny_bert, out)
    return Artifact("tiny-onnx", "onnx", out / "model.onnx")


@pytest.fixture(scope="session")
def quant_data(tiny_texts: list[str]) -> QuantizeData:
    """32 calibration texts and 32 other texts to evaluate on."""
    return QuantizeData(calibration_texts=tiny_texts[:32], eval_texts=tiny_texts[32:])
