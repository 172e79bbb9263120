"""Forward hooks, and what they see: module outputs are tensors, tuples or transformers ``ModelOutput``s."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor of a module's output (a tensor, a tuple, or a transformers ``ModelOutput``), or None."""
    if isinstance(output, torch.Tensor):
        return output
    items = output.values() if isinstance(output, dict) else output if isinstance(output, list | tuple) else ()
    return next((t for t in (first_tensor(i) for i in items) if t is not None), None)


@contextmanager
def recorded_outputs(modules: dict[str, nn.Module], keep: Callable[[str, Any], Any],
                     first_call_only: bool = False) -> Iterator[dict[str, Any]]:
    """While the block runs, fill a dict with ``keep(key, output)`` of each named module's forward (the last call's,
    or the first's); the hooks are removed afterwards, whatever happens. A ``keep`` that returns None stores nothing.
    """
    store: dict[str, Any] = {}

    def hook_for(key: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if first_call_only and key in store:
                return
            value = keep(key, output)
            if value is not None:
                store[key] = value

        return hook

    handles = [module.register_forward_hook(hook_for(key)) for key, module in modules.items()]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()
