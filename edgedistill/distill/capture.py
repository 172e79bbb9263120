"""Intermediate tensors taken with forward hooks on named modules; models' ``forward`` is never edited.

Keys name what a loss needs: ``output`` (the task output), ``hidden.{i}`` (layer i's output, (B, S, H)),
``query.{i}`` / ``key.{i}`` / ``value.{i}`` (layer i's attention projections, (B, S, heads*D)), and
``module:{path}`` (any named module's output, e.g. a CNN stage's feature map (B, C, H, W)).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from edgedistill.errors import ConfigError
from edgedistill.models.architectures import BY_MODEL_TYPE, architecture_of
from edgedistill.models.outputs import first_tensor, recorded_outputs


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
    """Describe a :class:`TaskModel` of a known family (layers, hidden size, heads) or any other module (white-box,
    no layers: only its output and named modules can be compared)."""
    backbone = getattr(model, "backbone", model)  # a TaskModel's, or a Hugging Face model itself (a causal LM)
    config = getattr(backbone, "config", None)
    if config is None or getattr(config, "model_type", None) not in BY_MODEL_TYPE:
        return ModelInfo(name, True, model=model)
    arch = BY_MODEL_TYPE[config.model_type]
    heads = arch.num_heads(config)
    return ModelInfo(name, True, arch.num_layers(config), arch.hidden_size(config), heads, model=model,
                     attention_width=heads * arch.head_size(config))


def layer_projection(model: nn.Module, layer: nn.Module, kind: str, where: str) -> nn.Module:
    """The query/key/value projection inside one transformer layer, where the family's adapter says it is.

    Raises:
        ConfigError: the family packs Q, K and V into one projection (GPT-2), so they cannot be hooked apart.
    """
    arch = architecture_of(getattr(model, "backbone", model), where)
    if arch.query == arch.key:
        raise ConfigError(f"{where}: {arch.name} packs query, key and value into one projection ({arch.query}); "
                          "attention losses need them apart; use hidden_mse or output losses")
    return arch.projection(layer, getattr(arch, kind))


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
    backbone = getattr(model, "backbone", model)
    known = model_info(model, where).layers  # a model of a known family (a TaskModel, or a causal LM)
    layers: Any = architecture_of(backbone, where).layer_list(backbone) if known else None
    if layers is None or int(index) >= len(layers):
        count = 0 if layers is None else len(layers)
        raise ConfigError(f"{where}: layer {index} does not exist; the model has {count} layers")
    layer = layers[int(index)]
    return layer if kind == "hidden" else layer_projection(model, layer, kind, where)


def output_tensor(output: Any, key: str) -> torch.Tensor:
    """A module's output tensor (layers of some models return tuples whose first item is the hidden state)."""
    tensor = first_tensor(output)
    if tensor is None:
        raise ConfigError(f"distill: module output '{key}' holds no tensor to compare")
    return tensor


def capture(model: nn.Module, keys: list[str], where: str = "model") -> AbstractContextManager[dict[str, torch.Tensor]]:
    """Fill a dict with the outputs named by ``keys`` while the block runs a forward pass."""
    modules = {key: resolve(model, key, where) for key in keys if key != "output"}
    return recorded_outputs(modules, lambda key, output: output_tensor(output, key))
