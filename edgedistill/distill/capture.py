"""Intermediate tensors taken with forward hooks on named modules; models' ``forward`` is never edited.

Keys name what a loss needs: ``output`` (the task output), ``hidden.{i}`` (layer i's output, (B, S, H)),
``query.{i}`` / ``key.{i}`` / ``value.{i}`` (layer i's attention projections, (B, S, heads*D)), and
``module:{path}`` (any named module's output, e.g. a CNN stage's feature map (B, C, H, W)).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgedistill.errors import ConfigError
from edgedistill.models.outputs import first_tensor

PROJECTION_NAMES = {"query": ("query", "q_proj", "q_lin"), "key": ("key", "k_proj", "k_lin"),
                    "value": ("value", "v_proj", "v_lin")}


@dataclass(frozen=True)
class ModelInfo:
    """What a model exposes to losses: layer count, widths, heads; black-box models expose only ``output``."""

    name: str
    white_box: bool
    layers: int = 0
    hidden: int = 0
    heads: int = 0
    output_dim: int = 0
    model: nn.Module | None = field(default=None, compare=False, repr=False)
    attention_width: int = 0  # width of the Q/K/V projections (0: the hidden size; less in head-pruned models)

    @property
    def projection_width(self) -> int:
        return self.attention_width or self.hidden


def model_info(model: nn.Module, name: str) -> ModelInfo:
    """Describe a :class:`TaskModel` (layers, hidden size, heads) or any other module (white-box, no layers)."""
    backbone = getattr(model, "backbone", None)
    config = getattr(backbone, "config", None)
    if config is None:
        return ModelInfo(name, True, model=model)
    head_size = getattr(config, "attention_head_size", None)
    width = config.num_attention_heads * head_size if head_size else config.hidden_size
    return ModelInfo(name, True, config.num_hidden_layers, config.hidden_size, config.num_attention_heads,
                     model=model, attention_width=width)


def layer_projection(layer: nn.Module, kind: str, where: str) -> nn.Module:
    """The query/key/value Linear inside one transformer layer (BERT, RoBERTa, DistilBERT, Llama-style names)."""
    for name, module in layer.named_modules():
        if name.rsplit(".", 1)[-1] in PROJECTION_NAMES[kind]:
            return module
    raise ConfigError(f"{where}: no {kind} projection found in {type(layer).__name__}; attention losses need "
                      f"a submodule named one of {PROJECTION_NAMES[kind]}")


def resolve(model: nn.Module, key: str, where: str) -> nn.Module:
    """The module whose output ``key`` names.

    Raises:
        ConfigError: a layer or module the model lacks.
    """
    if key.startswith("module:"):
        path = key.removeprefix("module:")
        try:
            return model.get_submodule(path)
        except AttributeError:
            names = [n for n, _ in model.named_modules() if n][:8]
            raise ConfigError(f"{where}: module '{path}' not found; modules include {names}") from None
    kind, index = key.split(".")
    layers: Any = getattr(model, "layers", None)
    if layers is None or int(index) >= len(layers):
        count = 0 if layers is None else len(layers)
        raise ConfigError(f"{where}: layer {index} does not exist; the model has {count} layers")
    layer = layers[int(index)]
    return layer if kind == "hidden" else layer_projection(layer, kind, where)


def output_tensor(output: Any, key: str) -> torch.Tensor:
    """A module's output tensor (layers of some models return tuples whose first item is the hidden state)."""
    tensor = first_tensor(output)
    if tensor is None:
        raise ConfigError(f"distill: module output '{key}' holds no tensor to compare")
    return tensor


@contextmanager
def capture(model: nn.Module, keys: list[str], where: str = "model") -> Iterator[dict[str, torch.Tensor]]:
    """Fill a dict with the outputs named by ``keys`` while the block runs a forward pass."""
    store: dict[str, torch.Tensor] = {}
    handles = []
    for key in keys:
        if key == "output":
            continue
        module = resolve(model, key, where)

        def hook(_m: nn.Module, _i: Any, out: Any, key: str = key) -> None:
            store[key] = output_tensor(out, key)

        handles.append(module.register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
