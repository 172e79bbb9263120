"""Calibration: batches of samples (texts, image paths) fed to ONNX Runtime's calibrators, ranges cached on disk.

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
from edgedistill.tasks import Task

METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def calibration_texts(data: QuantizeData | None, settings: StaticSettings, modality: str = "text") -> list[str]:
    """The first ``calibration_size`` non-blank samples (texts, or image paths for an image model).

    Raises:
        InputError: no data, or fewer than MIN_CALIBRATION samples.
    """
    texts = [t for t in (data.calibration_texts if data else []) if t.strip()][: settings.calibration_size]
    if len(texts) < MIN_CALIBRATION:
        noun, flag = ("images", "--images") if modality == "image" else ("texts", "--texts")
        raise InputError(
            f"static INT8 needs at least {MIN_CALIBRATION} calibration {noun}, got {len(texts)}; "
            f"pass more ({flag}, data.calibration_texts) or use mode dynamic-int8")
    return texts


class SampleBatches:
    """ORT ``CalibrationDataReader``: samples (texts, or image paths) made into the model's inputs per batch by its
    Task.

    MinMax takes batches of any shape, so each text batch pads only to its own longest text. ORT's histogram
    calibrators (entropy, percentile) stack all batches into one array, so with ``same_shape`` every
    text batch pads to the set's longest text and the last batch is filled up with samples from the start
    (images are one size already).
    """

    def __init__(self, task: Task, preprocessor: Any, samples: list[str], input_names: list[str], batch_size: int,
                 max_length: int, same_shape: bool = False):
        self.task, self.preprocessor, self.input_names, self.max_length = task, preprocessor, input_names, max_length
        self.batch_size = min(batch_size, len(samples))
        self.samples = samples + samples[: -len(samples) % self.batch_size] if same_shape else samples
        text = task.modality == "text"
        self.pad_to = max(token_counts(preprocessor, samples, max_length)) if same_shape and text else None
        self.batches: Iterator[dict[str, np.ndarray]] = iter(self.encode())

    def encode(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self.samples), self.batch_size):
            batch = self.samples[start:start + self.batch_size]
            if self.pad_to:
                enc = self.preprocessor(batch, padding="max_length", truncation=True, max_length=self.pad_to,
                                        return_tensors="np")
                feeds = {name: np.asarray(enc[name], dtype=np.int64) for name in enc}
            else:
                feeds = self.task.encode(self.preprocessor, batch, self.max_length)
            yield {name: feeds[name] for name in self.input_names}

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
