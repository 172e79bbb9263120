"""What a target decides downstream: attention form, precision, workspace, DLA use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from edgedistill.targets.schema import Target

NATIVE_ATTENTION_SINCE = (10, 14)  # TensorRT imports ONNX `Attention` (opset 23) from 10.14 on
DEFAULT_WORKSPACE_MIB = 1024

AttentionForm = Literal["native", "plugin", "decomposed"]


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.3.0"`` → ``(10, 3, 0)``; a tail that is not dotted numbers (``8.5.2-1+cuda11.4``) is ignored."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def attention_form(tensorrt: str | None) -> AttentionForm:
    """``native`` ONNX Attention for TensorRT >= 10.14, our ``plugin`` below, ``decomposed`` without TensorRT."""
    if tensorrt is None:
        return "decomposed"
    return "native" if parse_version(tensorrt)[:2] >= NATIVE_ATTENTION_SINCE else "plugin"


@dataclass(frozen=True)
class TargetDefaults:
    """The choices a target makes when the user does not."""

    precision: str
    attention: AttentionForm
    workspace_mib: int
    dla_core: int | None
    tensorrt: str | None


def target_defaults(target: Target, tensorrt: str | None = None) -> TargetDefaults:
    """Defaults for ``target``; ``tensorrt`` overrides the version it ships with (e.g. the installed one)."""
    version = tensorrt or target.tensorrt
    return TargetDefaults(
        precision=target.default_precision,
        attention=attention_form(version) if target.has_gpu else "decomposed",
        workspace_mib=target.workspace_mib or DEFAULT_WORKSPACE_MIB,
        dla_core=0 if target.dla_by_default else None,
        tensorrt=version,
    )
