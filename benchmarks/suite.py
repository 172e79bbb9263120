"""Load a benchmark suite (YAML): the bench settings and the models of one side-by-side comparison.

    name: demo-cpu
    bench: {backends: [torch, onnxruntime], shapes: [{batch: 1, seq: 128}], warmup: 10, iterations: 100,
            threads: 1, rounds: 20}
    models: {teacher: {kind: hf, path: ...}, ...}   # optional; scripts default to a demo run directory

Keys that ``BenchConfig`` validates are validated by it; measurement keys it does not (yet) declare
(``warmup_s``, ``rounds``, ``compare``, ``inter_op_threads``, ``power`` ...) pass through to the runner.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from pydantic import ValidationError

from edgedistill.bench.settings import BenchSettings
from edgedistill.config import BenchConfig, format_validation_error
from edgedistill.errors import ConfigError

SUITES = Path(__file__).parent / "suites"


def load_suite(path: Path | str) -> tuple[dict[str, Any], SimpleNamespace]:
    """(suite dict, bench config object accepted by ``edgedistill.bench.run``).

    Raises:
        ConfigError: unknown key, or a value BenchConfig rejects.
    """
    path = Path(path)
    if not path.is_file():
        path = SUITES / f"{path}.yaml"
    suite = yaml.safe_load(path.read_text())
    bench = dict(suite.get("bench") or {})
    known = {k: bench.pop(k) for k in list(bench) if k in BenchConfig.model_fields}
    unknown = [k for k in bench if k not in BenchSettings.__dataclass_fields__]
    if unknown:
        raise ConfigError(f"{path}: bench.{unknown[0]}: unknown key")
    try:
        cfg = BenchConfig.model_validate(known)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"{path}: bench")) from None
    return suite, SimpleNamespace(**{k: getattr(cfg, k) for k in BenchConfig.model_fields}, **bench)
