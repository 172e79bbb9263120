"""Width reduction: keep the most important attention heads and FFN units of each BERT-style layer.

Each layer keeps its own ``heads`` heads and ``intermediate_size`` FFN units, ranked by weight magnitude (the
L2 norm of a head's Q/K/V rows and attention-output columns; of a unit's intermediate row and output column)
or by activation statistics on held-out texts (the mean norm of a head's contribution to the attention output;
of a unit's mean |activation| times its output column's norm). Kept units stay in their original order, and the
Linear layers are sliced consistently: Q/K/V rows, attention-output columns, intermediate rows, output columns.
The hidden size is unchanged. With fewer heads the student becomes a ``pruned_bert`` (see
:mod:`edgedistill.models.pruned_bert`), as transformers 5's BERT derives the head size from the head count.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from edgedistill.errors import ConfigError
from edgedistill.models.task_model import TaskModel

Scores = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (head scores (H,), FFN unit scores (M,))


def parts(layer: nn.Module) -> dict[str, nn.Linear]:
    """The Linear layers of a BERT-style layer that width reduction slices."""
    m: Any = layer
    return {"query": m.attention.self.query, "key": m.attention.self.key, "value": m.attention.self.value,
            "attn_out": m.attention.output.dense, "inter": m.intermediate.dense, "out": m.output.dense}


def head_rows(heads: torch.Tensor, head_size: int) -> torch.Tensor:
    """Row indices of the projection output for the given heads: head h owns rows h*d … (h+1)*d - 1."""
    return (heads[:, None] * head_size + torch.arange(head_size)).flatten()


def weight_scores(layer: nn.Module, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(heads,) and (intermediate,) importance from weight magnitude."""
    p = parts(layer)
    d = p["query"].out_features // heads
    qkv = sum(p[k].weight.detach().pow(2).view(heads, d, -1).sum((1, 2)) for k in ("query", "key", "value"))
    out = p["attn_out"].weight.detach().pow(2).view(-1, heads, d).sum((0, 2))
    ffn = p["inter"].weight.detach().pow(2).sum(1) + p["out"].weight.detach().pow(2).sum(0)
    return (qkv + out).sqrt(), ffn.sqrt()


def activation_scores(model: TaskModel, tokenizer: Any, texts: list[str], max_length: int) -> Scores:
    """Per layer, head and FFN-unit importance from the activations on ``texts`` (padding excluded)."""
    heads = model.backbone.config.num_attention_heads
    sums: dict[tuple[int, str], torch.Tensor] = {}
    mask = torch.ones(0)

    def hook(i: int, kind: str, linear: nn.Linear) -> Any:
        def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].float()  # (B, S, W)
            if kind == "head":  # each head's share of the attention output: ctx_h @ W_O[:, h]ᵀ, (B, S, heads, H)
                b, s, w = x.shape
                w_o = linear.weight.view(-1, heads, w // heads)
                value = torch.einsum("bshd,ohd->bsho", x.view(b, s, heads, -1), w_o).norm(dim=-1)
            else:
                value = x.abs() * linear.weight.norm(dim=0)
            total = (value * mask.view(*mask.shape, *([1] * (value.dim() - 2)))).sum((0, 1))
            sums[i, kind] = sums.get((i, kind), 0) + total

        return record

    handles = []
    for i, layer in enumerate(model.layers):
        p = parts(layer)
        handles += [p["attn_out"].register_forward_pre_hook(hook(i, "head", p["attn_out"])),
                    p["out"].register_forward_pre_hook(hook(i, "ffn", p["out"]))]
    try:
        with torch.no_grad():
            for start in range(0, len(texts), 32):
                enc = tokenizer(texts[start : start + 32], padding=True, truncation=True, max_length=max_length,
                                return_tensors="pt")
                mask = enc["attention_mask"].float()
                model(**enc)
    finally:
        for h in handles:
            h.remove()
    return [(sums[i, "head"], sums[i, "ffn"]) for i in range(len(model.layers))]


def keep_top(scores: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the ``count`` highest scores, in their original order (ties keep the earlier unit)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(sorted(order[:count]))


def sliced(linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None) -> nn.Linear:
    """A new Linear with only the given output rows / input columns."""
    weight = linear.weight.detach()
    bias = linear.bias.detach() if linear.bias is not None else None
    if rows is not None:
        weight = weight[rows]
        bias = bias[rows] if bias is not None else None
    if cols is not None:
        weight = weight[:, cols]
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


def slice_layer(layer: nn.Module, keep_heads: torch.Tensor, keep_units: torch.Tensor, head_size: int) -> None:
    """Slice one BERT-style layer in place to the kept heads and FFN units."""
    m: Any = layer
    rows = head_rows(keep_heads, head_size)
    attn = m.attention.self
    attn.query, attn.key, attn.value = (sliced(getattr(attn, k), rows=rows) for k in ("query", "key", "value"))
    attn.num_attention_heads, attn.all_head_size = len(keep_heads), len(rows)
    m.attention.output.dense = sliced(m.attention.output.dense, cols=rows)
    m.intermediate.dense = sliced(m.intermediate.dense, rows=keep_units)
    m.output.dense = sliced(m.output.dense, cols=keep_units)


def check_width(config: Any, heads: int, intermediate: int) -> None:
    """Raises ConfigError when the asked width exceeds the teacher's (any smaller count fits: heads keep their size)."""
    where = "student.from_teacher"
    if heads > config.num_attention_heads:
        raise ConfigError(f"{where}.heads: {heads} > the teacher's {config.num_attention_heads} attention heads")
    if intermediate > config.intermediate_size:
        raise ConfigError(f"{where}.intermediate_size: {intermediate} > the teacher's {config.intermediate_size}")


def prune_width(model: TaskModel, heads: int | None, intermediate: int | None,
                scores: Scores | None = None) -> TaskModel:
    """A copy of ``model`` with ``heads`` heads and ``intermediate`` FFN units per layer (None: keep all).

    ``scores`` ranks the units (default: weight magnitude).

    Raises:
        ConfigError: more heads or units than the model has, or a model that is not BERT-style.
    """
    config = model.backbone.config
    heads = heads or config.num_attention_heads
    intermediate = intermediate or config.intermediate_size
    check_width(config, heads, intermediate)
    head_size = getattr(config, "attention_head_size", config.hidden_size // config.num_attention_heads)
    try:
        scores = scores or [weight_scores(layer, config.num_attention_heads) for layer in model.layers]
    except AttributeError:
        raise ConfigError(f"student.from_teacher: width reduction needs BERT-style layers "
                          f"(attention.self.query …); got {type(model.layers[0]).__name__}") from None
    student = copy.deepcopy(model)
    for layer, (head_scores, unit_scores) in zip(student.layers, scores):
        slice_layer(layer, keep_top(head_scores, heads), keep_top(unit_scores, intermediate), head_size)
    return rebuild(student, heads, intermediate, head_size)


def rebuild(student: TaskModel, heads: int, intermediate: int, head_size: int) -> TaskModel:
    """Give the sliced backbone a config that describes it, so it saves and loads as itself.

    A plain ``bert`` config while the heads span the hidden size, ``pruned_bert`` (with ``attention_head_size``)
    otherwise; the sliced weights load strictly into the new model.
    """
    from transformers import BertConfig, BertForSequenceClassification, BertModel

    from edgedistill.models.pruned_bert import PrunedBertConfig, PrunedBertForSequenceClassification, PrunedBertModel

    backbone = student.backbone
    old = backbone.config
    hidden = backbone.base_model.embeddings.word_embeddings.embedding_dim
    plain = heads * head_size == hidden
    kinds = {"BertModel": (BertModel, PrunedBertModel),
             "BertForSequenceClassification": (BertForSequenceClassification, PrunedBertForSequenceClassification)}
    kinds["PrunedBertModel"], kinds["PrunedBertForSequenceClassification"] = kinds["BertModel"], \
        kinds["BertForSequenceClassification"]
    if type(backbone).__name__ not in kinds:
        raise ConfigError(f"student.from_teacher: width reduction needs a BERT model (the head size is not a config "
                          f"key of {type(backbone).__name__} in transformers 5); keep the teacher's width or use a "
                          "BERT teacher")
    cls = kinds[type(backbone).__name__][0 if plain else 1]
    fields = {k: v for k, v in old.to_dict().items()
              if k not in ("model_type", "transformers_version", "attention_head_size")}
    fields.update(hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
                  architectures=[cls.__name__])
    config = BertConfig(**fields) if plain else PrunedBertConfig(attention_head_size=head_size, **fields)
    new = cls(config)
    new.load_state_dict(backbone.state_dict())
    new.train(backbone.training)
    return TaskModel(new, student.task, student.pooling, student.normalize, student.dense, student.dense_tanh)
