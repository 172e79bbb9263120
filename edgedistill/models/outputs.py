"""What forward hooks see: module outputs are tensors, tuples or transformers ``ModelOutput``s."""

from __future__ import annotations

from typing import Any

import torch


def first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor of a module's output (a tensor, a tuple, or a transformers ``ModelOutput``), or None."""
    if isinstance(output, torch.Tensor):
        return output
    items = output.values() if isinstance(output, dict) else output if isinstance(output, list | tuple) else ()
    return next((t for t in (first_tensor(i) for i in items) if t is not None), None)
