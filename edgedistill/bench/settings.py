"""How a benchmark measures: :class:`BenchConfig` as run — threads resolved to a number — plus the inputs' seed and
the variation above which a warning is printed. Every value used is written into the results file, so a reader
never has to guess how a number was measured; the defaults are BenchConfig's, the only place they live."""

from __future__ import annotations

import os
from typing import Any

from edgedistill.config import BenchConfig
from edgedistill.config.base import PositiveInt
from edgedistill.engines.options import SessionOptions

CV_WARN = 0.1
NOT_SETTINGS = {"backends", "shapes"}  # what is measured, not how


class BenchSettings(BenchConfig):
    """A BenchConfig with its thread count resolved, the seed of the synthetic inputs and the CV warning level."""

    threads: PositiveInt  # type: ignore[assignment]  # resolved: never None here
    seed: int = 0
    cv_warn: float = CV_WARN

    def session_options(self) -> SessionOptions:
        return SessionOptions(threads=self.threads, inter_op_threads=self.inter_op_threads, device=self.device,
                              providers=tuple(self.providers), compile=self.torch_compile,
                              cuda_graphs=self.cuda_graphs)

    def as_dict(self) -> dict[str, Any]:
        """The settings as the results file records them."""
        return self.model_dump(mode="json", exclude=NOT_SETTINGS)


def settings_from(cfg: BenchConfig | None = None, **changes: Any) -> BenchSettings:
    """The settings of ``cfg`` (default: BenchConfig's defaults), threads defaulting to every core."""
    cfg = cfg or BenchConfig()
    values = {**cfg.model_dump(), "threads": cfg.threads or os.cpu_count() or 1, **changes}
    return BenchSettings.model_validate(values)
