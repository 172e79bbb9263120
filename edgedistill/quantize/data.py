"""What the quantize stage needs from the pipeline's data: calibration texts, evaluation texts, STS pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.config import LossSpec
from edgedistill.data.stsb import StsPairs

MIN_CALIBRATION = 8  # fewer texts give activation ranges from a handful of sentences: not a calibration


def default_qad_losses() -> list[LossSpec]:
    return [LossSpec(name="embedding_mse"), LossSpec(name="embedding_cosine", weight=0.1)]


@dataclass(frozen=True)
class QadData:
    """What quantization-aware distillation trains from, besides the ONNX model it replaces.

    ``student`` is the float Hugging Face folder the ONNX model was exported from; ``teacher_outputs`` the
    teacher's final outputs for ``texts``, an (N, D) array (memory-mapped is fine) or a function of row
    indices, as :func:`edgedistill.distill.trainer.train` takes them; ``losses`` output-only distillation losses.
    """

    student: Path
    texts: list[str]
    teacher_outputs: np.ndarray | Callable[[np.ndarray], np.ndarray]
    losses: list[LossSpec] = field(default_factory=default_qad_losses)
    seed: int = 0


@dataclass(frozen=True)
class QuantizeData:
    """Texts for calibration and for the quality checks of the sensitivity analysis and the budget.

    ``cache_dir`` keeps calibration ranges between runs (default: inside the stage's folder).
    ``eval_texts`` should not overlap ``calibration_texts``; ``sts`` is needed only for an ``sts_drop`` budget.
    """

    calibration_texts: list[str]
    eval_texts: list[str] = field(default_factory=list)
    sts: StsPairs | None = None
    cache_dir: Path | None = None
    max_length: int = 128
    batch_size: int = 32
    threads: int | None = None
    qad: QadData | None = None  # needed by mode qad-int8 only
    targets: list[Any] = field(default_factory=list)  # a weight-only budget's: the teacher's answers (SequenceTargets)
