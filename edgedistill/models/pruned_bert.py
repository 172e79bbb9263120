"""BERT with fewer attention heads than ``hidden_size / head size``: the model type of head-pruned students.

transformers 5 computes a BERT head's size as ``hidden_size / num_attention_heads`` and no longer keeps
``pruned_heads``, so a BERT whose heads were pruned (hidden 384, 6 heads of 32) cannot be written as a plain
``bert`` config. ``pruned_bert`` is BERT plus one key, ``attention_head_size``; its layers are BERT's own
modules with narrower query/key/value and attention-output projections, so the ONNX export is the same graph.
Importing this module registers the type with the ``Auto*`` classes (``load_task_model`` does); without
edgedistill, transformers says the model type is unknown rather than loading mismatched weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
)


class PrunedBertConfig(BertConfig):
    model_type = "pruned_bert"

    def __init__(self, attention_head_size: int = 64, **kwargs: Any):
        super().__init__(**kwargs)
        self.attention_head_size = attention_head_size


@contextmanager
def full_width(config: PrunedBertConfig) -> Iterator[None]:
    """While BERT's constructor runs, pretend the heads span the hidden size (it checks and sizes from that)."""
    heads = config.num_attention_heads
    config.num_attention_heads = config.hidden_size // config.attention_head_size
    try:
        yield
    finally:
        config.num_attention_heads = heads


def narrow_attention(model: nn.Module, heads: int, head_size: int) -> None:
    """Give every self-attention ``heads`` heads of ``head_size`` (fresh projections, BERT's initialisation)."""
    width = heads * head_size
    for module in model.modules():
        if type(module).__name__ != "BertAttention":
            continue
        attn: Any = module.self
        hidden = attn.query.in_features
        attn.num_attention_heads, attn.all_head_size = heads, width
        attn.query, attn.key, attn.value = (nn.Linear(hidden, width) for _ in range(3))
        module.output.dense = nn.Linear(width, hidden)  # type: ignore[union-attr]
        for linear in (attn.query, attn.key, attn.value, module.output.dense):  # type: ignore[union-attr]
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)


class PrunedBertModel(BertModel):
    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig, *args: Any, **kwargs: Any):
        with full_width(config):
            super().__init__(config, *args, **kwargs)
        narrow_attention(self, config.num_attention_heads, config.attention_head_size)


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig, *args: Any, **kwargs: Any):
        with full_width(config):
            super().__init__(config, *args, **kwargs)
        narrow_attention(self, config.num_attention_heads, config.attention_head_size)


def register() -> None:
    """Make ``AutoModel`` / ``AutoModelForSequenceClassification`` load ``pruned_bert`` folders (idempotent)."""
    AutoConfig.register(PrunedBertConfig.model_type, PrunedBertConfig, exist_ok=True)
    AutoModel.register(PrunedBertConfig, PrunedBertModel, exist_ok=True)
    AutoModelForSequenceClassification.register(PrunedBertConfig, PrunedBertForSequenceClassification, exist_ok=True)


register()


BERT_CLASSES = {"BertModel": (BertModel, PrunedBertModel),
                "BertForSequenceClassification": (BertForSequenceClassification, PrunedBertForSequenceClassification)}


def bert_class_and_config(class_name: str, config: Any) -> tuple[type[nn.Module], BertConfig]:
    """The class and config for a BERT (plain or pruned, ``class_name`` of either) sized by ``config``: plain
    ``bert`` while the heads span the hidden size, ``pruned_bert`` with its ``attention_head_size`` otherwise."""
    base = class_name.replace("PrunedBert", "Bert")
    if base not in BERT_CLASSES:
        from edgedistill.errors import ConfigError

        raise ConfigError(f"student.from_teacher: a {class_name} cannot be resized; use BertModel or "
                          "BertForSequenceClassification")
    head_size = getattr(config, "attention_head_size", None) or config.hidden_size // config.num_attention_heads
    plain = config.num_attention_heads * head_size == config.hidden_size
    fields = {k: v for k, v in config.to_dict().items()
              if k not in ("model_type", "transformers_version", "attention_head_size")}
    cls = BERT_CLASSES[base][0 if plain else 1]
    fields["architectures"] = [cls.__name__]
    return cls, BertConfig(**fields) if plain else PrunedBertConfig(attention_head_size=head_size, **fields)
