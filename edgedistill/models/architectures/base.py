"""What edgedistill needs to know about a transformer family: where its layers, attention projections and MLP
live, which config keys size them, and which slicings a saved model of the family can express.

One :class:`Architecture` per family (see :mod:`edgedistill.models.architectures.families`); it is found from the
Hugging Face config's ``model_type``. Paths are dotted module paths: ``layers`` from the base model (the encoder
without a task head), the projections from one layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

Kind = Literal["encoder", "decoder", "vision"]


@dataclass(frozen=True)
class Architecture:
    """A family's layout.

    ``query``/``key``/``value``/``output``: the attention projections in a layer; ``ffn_in``: the MLP's input
    projections (one, or gate and up); ``ffn_out``: its output projection. ``conv1d``: projections are GPT-2's
    ``Conv1D`` (weight stored (in, out)) rather than ``nn.Linear`` ((out, in)). ``head_size_key``: the config key
    holding the head size where the family lets it differ from hidden/heads; ``head_pruning``: a model with fewer
    heads can be saved and loaded (the head size stays a config key and every projection follows the head count);
    ``hidden_pruning``: the residual stream can be narrowed (BERT's ``pruned_bert`` type).
    """

    name: str
    model_types: tuple[str, ...]
    kind: Kind
    layers: str
    query: str
    key: str
    value: str
    output: str
    ffn_in: tuple[str, ...]
    ffn_out: str
    layers_key: str = "num_hidden_layers"
    heads_key: str = "num_attention_heads"
    hidden_key: str = "hidden_size"
    ffn_key: str = "intermediate_size"
    kv_heads_key: str | None = None
    head_size_key: str | None = None
    conv1d: bool = False
    head_pruning: bool = False
    hidden_pruning: bool = False

    def base(self, model: nn.Module) -> Any:
        """The model without its task head (``BertModel`` inside ``BertForSequenceClassification``)."""
        return getattr(model, "base_model", model)

    def layer_list(self, model: nn.Module) -> nn.ModuleList:
        """The stack of transformer layers."""
        layers = self.base(model).get_submodule(self.layers)
        assert isinstance(layers, nn.ModuleList), f"{self.name}: {self.layers} is not a ModuleList"
        return layers

    def replace_layers(self, model: nn.Module, layers: list[nn.Module]) -> None:
        """Put ``layers`` in place of the stack (in place), with the config and each attention's index updated."""
        parent, _, attr = self.layers.rpartition(".")
        setattr(self.base(model).get_submodule(parent) if parent else self.base(model), attr, nn.ModuleList(layers))
        setattr(model.config, self.layers_key, len(layers))
        for index, layer in enumerate(layers):
            for module in layer.modules():
                if hasattr(module, "layer_idx"):  # attention modules index KV caches by it
                    setattr(module, "layer_idx", index)  # noqa: B010 (typed as Tensor|Module otherwise)

    def projection(self, layer: nn.Module, path: str) -> nn.Module:
        return layer.get_submodule(path)

    def num_layers(self, config: Any) -> int:
        return int(getattr(config, self.layers_key))

    def num_heads(self, config: Any) -> int:
        return int(getattr(config, self.heads_key))

    def hidden_size(self, config: Any) -> int:
        return int(getattr(config, self.hidden_key))

    def ffn_size(self, config: Any) -> int:
        size = getattr(config, self.ffn_key, None)
        return int(size) if size is not None else 4 * self.hidden_size(config)  # GPT-2's n_inner: None means 4H

    def head_size(self, config: Any) -> int:
        explicit = getattr(config, self.head_size_key, None) if self.head_size_key else None
        return int(explicit) if explicit else self.hidden_size(config) // self.num_heads(config)
