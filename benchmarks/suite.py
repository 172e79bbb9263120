"""Load a benchmark suite (YAML): the bench settings and the models of one side-by-side comparison.

    name: demo-cpu
    bench: {backends: [torch, onnxruntime], shapes: [{batch: 1, seq: 128}], warmup: 10, iterations: 100,
            threads: 1, rounds: 20}
    models: {teacher: {kind: hf, path: ...}, ...}   # optional; scripts default to a demo run directory

Every key is a ``BenchConfig`` field, validated by it with the same messages as a pipeline config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgedistill.config import BenchConfig, format_validation_error
from edgedistill.errors import ConfigError

SUITES = Path(__file__).parent / "suites"


def load_suite(path: Path | str) -> tuple[dict[str, Any], BenchConfig]:
    """(suite dict, bench config object accepted by ``edgedistill.bench.benchmark``).

    Raises:
        ConfigError: unknown key, or a value BenchConfig rejects.
    """
    path = Path(path)
    if not path.is_file():
        path = SUITES / f"{path}.yaml"
    suite = yaml.safe_load(path.read_text())
    try:
        cfg = BenchConfig.model_validate(suite.get("bench") or {})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"{path}: bench")) from None
    return suite, cfg
