"""Calibration: tokenised batches of texts fed to ONNX Runtime's calibrators, with ranges cached on disk.

Calibration runs the model once over every text with every activation exposed; it is the slow part
of static quantization. Its result (one range or histogram-derived range per tensor) is saved as
JSON under a key made from the model's bytes, the texts and the method, so a re-run, a resumed run,
the sensitivity analysis and the budget search all quantize from the same ranges without recalibrating.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.errors import InputError
from edgedistill.quantize.data import MIN_CALIBRATION, QuantizeData
from edgedistill.quantize.presets import StaticSettings

METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def calibration_texts(data: QuantizeData | None, settings: StaticSettings) -> list[str]:
    """The first ``calibration_size`` non-blank texts.

    Raises:
        InputError: no data, or fewer than MIN_CALIBRATION texts.
    """
    texts = [t for t in (data.calibration_texts if data else []) if t.strip()][: settings.calibration_size]
    if len(texts) < MIN_CALIBRATION:
        raise InputError(
            f"static INT8 needs at least {MIN_CALIBRATION} calibration texts, got {len(texts)}; "
            "pass more texts (data.calibration_texts) or use mode dynamic-int8")
    return texts


class TextBatches:
    """ORT ``CalibrationDataReader``: texts tokenised per batch.

    MinMax takes batches of any shape, so each batch pads only to its own longest text. ORT's histogram
    calibrators (entropy, percentile) stack all batches into one array, so with ``same_shape`` every
    batch pads to the set's longest text and the last batch is filled up with texts from the start.
    """

    def __init__(self, tokenizer: Any, texts: list[str], input_names: list[str], batch_size: int, max_length: int,
                 same_shape: bool = False):
        self.tokenizer, self.input_names, self.max_length = tokenizer, input_names, max_length
        self.batch_size = min(batch_size, len(texts))
        self.texts = texts + texts[: -len(texts) % self.batch_size] if same_shape else texts
        self.pad_to = max(token_counts(tokenizer, texts, max_length)) if same_shape else None
        self.batches: Iterator[dict[str, np.ndarray]] = iter(self.encode())

    def encode(self) -> Iterator[dict[str, np.ndarray]]:
        padding = "max_length" if self.pad_to else "longest"
        for start in range(0, len(self.texts), self.batch_size):
            enc = self.tokenizer(self.texts[start:start + self.batch_size], padding=padding, truncation=True,
                                 max_length=self.pad_to or self.max_length, return_tensors="np")
            yield {name: np.asarray(enc[name], dtype=np.int64) for name in self.input_names}  # (B, S)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)

    def rewind(self) -> None:
        self.batches = iter(self.encode())


def token_counts(tokenizer: Any, texts: list[str], max_length: int) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]


def cache_key(model: Path, texts: list[str], settings: StaticSettings) -> str:
    """A short hash of what the ranges depend on: the model's bytes, the texts and the method."""
    digest = hashlib.sha256(model.read_bytes())
    digest.update(json.dumps([texts, settings.calibration, settings.percentile, settings.op_types]).encode())
    return digest.hexdigest()[:16]


def calibrator_options(settings: StaticSettings) -> tuple[Any, dict[str, Any]]:
    """ORT's CalibrationMethod and the extra options that configure it."""
    from onnxruntime.quantization import CalibrationMethod

    method = getattr(CalibrationMethod, METHODS[settings.calibration])
    extra: dict[str, Any] = {"CalibMovingAverage": False}
    if settings.calibration == "percentile":
        extra["CalibPercentile"] = settings.percentile
    return method, extra
