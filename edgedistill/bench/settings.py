"""Benchmark settings: :class:`BenchConfig` plus the measurement knobs it may not (yet) declare.

Reading optional fields with defaults keeps the runner working with older configs; every value used is
written into the results file, so a reader never has to guess how a number was measured.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from edgedistill.engines.options import SessionOptions

CV_WARN = 0.1


@dataclass(frozen=True)
class BenchSettings:
    """How to measure. ``warmup``/``warmup_s``: untimed calls, at least this many and this long;
    ``iterations``/``min_duration_s``: timed calls, at least this many and this long; ``compare``:
    ``interleaved`` (A B A B … in rounds, drift cancels) or ``sequential``; ``rounds``: rounds per shape
    when interleaved; ``round_warmup``: untimed calls opening each model's turn in a round; ``power``:
    ``auto`` (sample tegrastats where present), ``on`` or ``off``;
    ``power_s``/``idle_s``: length of each energy window and of the idle baseline; ``sessions``: fresh
    sessions per model, called in turn and pooled (see :class:`~edgedistill.bench.probe.RotatingProbe`)."""

    warmup: int = 5
    warmup_s: float = 0.0
    iterations: int = 50
    min_duration_s: float = 0.0
    threads: int = 1
    inter_op_threads: int = 1
    compare: str = "interleaved"
    rounds: int = 10
    round_warmup: int = 1
    power: str = "auto"
    power_s: float = 5.0
    idle_s: float = 3.0
    device: str = "cpu"
    providers: tuple[str, ...] = ("cpu",)
    torch_compile: bool = False
    cuda_graphs: bool = False
    seed: int = 0
    cv_warn: float = CV_WARN
    sessions: int = 1

    def session_options(self) -> SessionOptions:
        return SessionOptions(threads=self.threads, inter_op_threads=self.inter_op_threads, device=self.device,
                              providers=tuple(self.providers), compile=self.torch_compile,
                              cuda_graphs=self.cuda_graphs)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["providers"] = list(self.providers)
        return out


def settings_from(cfg: Any) -> BenchSettings:
    """Settings from a BenchConfig (or any object with some of the fields); missing fields take defaults."""
    base = BenchSettings()
    values = {name: getattr(cfg, name, getattr(base, name)) for name in base.__dataclass_fields__}
    values["threads"] = getattr(cfg, "threads", None) or os.cpu_count() or 1
    values["providers"] = tuple(values["providers"])
    return BenchSettings(**values)
