"""Native plugins: the fused-attention CUDA kernel and its TensorRT plugin.

The plugin's name, version, namespace and fields live in one spec (``fused_attention/spec.json``), read by the
Python fusion pass and by the C++ plugin's build, so the two cannot disagree.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FUSED_ATTENTION_DIR = Path(__file__).parent / "fused_attention"


@cache
def fused_attention_spec() -> dict[str, Any]:
    """The fused-attention plugin spec: name, version, namespace, inputs, outputs, fields."""
    spec: dict[str, Any] = json.loads((FUSED_ATTENTION_DIR / "spec.json").read_text())
    return spec
