"""What the quantize stage needs from the pipeline's data: calibration texts, evaluation texts, STS pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgedistill.data.stsb import StsPairs

MIN_CALIBRATION = 8  # fewer texts give activation ranges from a handful of sentences: not a calibration


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
