"""edgedistill: distil a teacher into a small student, export, quantize, benchmark and report.

The public API (each also a CLI command)::

    import edgedistill
    report = edgedistill.run("pkg:edgedistill/examples/minilm-cpu.yaml", out="runs/minilm")
    student = edgedistill.distill(config, out)
    onnx_model = edgedistill.export(student, out)
    int8 = edgedistill.quantize(onnx_model, out)
    edgedistill.bench([onnx_model, *int8], out)
    edgedistill.report(out)

Functions are imported lazily so that ``import edgedistill`` (and ``edgedistill --help``) stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run", "distill", "export", "quantize", "evaluate", "bench", "report", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "load_config":
        from edgedistill.config import load_config

        return load_config
    if name in __all__:
        from edgedistill import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgedistill' has no attribute {name!r}")
