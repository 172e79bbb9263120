"""Width reduction: keep the most important attention heads and FFN units of each transformer layer, any family.

Each layer keeps its own ``heads`` heads and ``intermediate_size`` FFN units, ranked by weight magnitude (the
L2 norm of a head's Q/K/V rows and attention-output columns; of a unit's FFN-input rows and output column)
or by activation statistics on held-out texts (the mean norm of a head's contribution to the attention output;
of a unit's mean |activation| times its output column's norm). Kept units stay in their original order. The
family's :class:`~edgedistill.models.architectures.Architecture` says where the projections are; the sliced
weights are loaded, strictly, into a fresh model built from a config that describes them, so the student saves and
loads as itself. The hidden size is unchanged.

FFN units can be cut in every family. Heads can be cut where a model with fewer heads can be saved (BERT, as
``pruned_bert``; ViT, whose config states the head size); in the others the layers and FFN units are cut.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from edgedistill.errors import ConfigError
from edgedistill.models.architectures import Architecture, architecture_of, families
from edgedistill.models.task_model import TaskModel, model_inputs

Scores = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (head scores (H,), FFN unit scores (M,))
WHERE = "student.from_teacher"


def weight_of(module: nn.Module, conv1d: bool) -> torch.Tensor:
    """A projection's weight as (out, in), whatever its storage (GPT-2's Conv1D keeps (in, out))."""
    weight: Any = module.weight
    return weight.detach().t() if conv1d else weight.detach()


def head_rows(heads: torch.Tensor, head_size: int) -> torch.Tensor:
    """Row indices of the projection output for the given heads: head h owns rows h*d … (h+1)*d - 1."""
    return (heads[:, None] * head_size + torch.arange(head_size)).flatten()


def unit_weight_scores(arch: Architecture, config: Any, layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(heads,) and (intermediate,) importance of the units of one layer of family ``arch`` from weight magnitude."""
    heads, d = arch.num_heads(config), arch.head_size(config)
    qkv = sum(weight_of(arch.projection(layer, p), arch.conv1d)[: heads * d].pow(2).view(heads, d, -1).sum((1, 2))
              for p in {arch.query, arch.key, arch.value})
    out = weight_of(arch.projection(layer, arch.output), arch.conv1d).pow(2).view(-1, heads, d).sum((0, 2))
    return (qkv + out).sqrt(), ffn_weight_scores(arch, layer)  # type: ignore[union-attr]


def ffn_weight_scores(arch: Architecture, layer: nn.Module) -> torch.Tensor:
    """(intermediate,) L2 norm of each FFN unit's input rows (one projection, or gate and up) and output column."""
    ffn = sum(weight_of(arch.projection(layer, p), arch.conv1d).pow(2).sum(1) for p in arch.ffn_in)
    ffn = ffn + weight_of(arch.projection(layer, arch.ffn_out), arch.conv1d).pow(2).sum(0)
    return ffn.sqrt()  # type: ignore[union-attr]


def unit_activation_scores(model: TaskModel, tokenizer: Any, texts: list[str], max_length: int) -> Scores:
    """Per layer, head and FFN-unit importance from the activations on ``texts`` (padding excluded)."""
    arch = architecture_of(model.backbone, WHERE)
    heads = arch.num_heads(model.backbone.config)
    sums: dict[tuple[int, str], torch.Tensor] = {}
    mask = torch.ones(0)

    def hook(i: int, kind: str, projection: nn.Module) -> Any:
        out_by_in = weight_of(projection, arch.conv1d)  # (hidden, width)

        def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].float()  # (B, S, W)
            if kind == "head":  # each head's share of the attention output: ctx_h @ W_O[:, h]ᵀ, (B, S, heads, H)
                b, s, w = x.shape
                w_o = out_by_in.view(-1, heads, w // heads)
                value = torch.einsum("bshd,ohd->bsho", x.view(b, s, heads, -1), w_o).norm(dim=-1)
            else:
                value = x.abs() * out_by_in.norm(dim=0)
            total = (value * mask.view(*mask.shape, *([1] * (value.dim() - 2)))).sum((0, 1))
            sums[i, kind] = sums.get((i, kind), 0) + total

        return record

    handles = []
    for i, layer in enumerate(model.layers):
        for kind, path in (("head", arch.output), ("ffn", arch.ffn_out)):
            projection = arch.projection(layer, path)
            handles.append(projection.register_forward_pre_hook(hook(i, kind, projection)))
    try:
        with torch.no_grad():
            for start in range(0, len(texts), 32):
                enc = model_inputs(model, tokenizer, texts[start : start + 32], max_length)
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


def slice_projection(state: dict[str, torch.Tensor], name: str, conv1d: bool, rows: torch.Tensor | None = None,
                     cols: torch.Tensor | None = None) -> None:
    """Slice the state-dict entries of projection ``name`` to output ``rows`` / input ``cols`` (in place)."""
    weight = state[f"{name}.weight"]
    out_axis, in_axis = (1, 0) if conv1d else (0, 1)
    if rows is not None:
        weight = weight.index_select(out_axis, rows)
        if f"{name}.bias" in state:
            state[f"{name}.bias"] = state[f"{name}.bias"][rows]
    if cols is not None:
        weight = weight.index_select(in_axis, cols)
    state[f"{name}.weight"] = weight.contiguous()


def check_width(arch: Architecture, config: Any, heads: int, intermediate: int) -> None:
    """Raises ConfigError when the asked width exceeds the teacher's, or the family cannot save fewer heads."""
    if heads > arch.num_heads(config):
        raise ConfigError(f"{WHERE}.heads: {heads} > the teacher's {arch.num_heads(config)} attention heads")
    if intermediate > arch.ffn_size(config):
        raise ConfigError(f"{WHERE}.intermediate_size: {intermediate} > the teacher's {arch.ffn_size(config)}")
    if heads == arch.num_heads(config):
        return
    if not arch.head_pruning or arch.kv_heads_key:
        can = ", ".join(f.name for f in families.FAMILIES if f.head_pruning and not f.kv_heads_key)
        raise ConfigError(f"{WHERE}.heads: a {arch.name} model cannot be saved with fewer heads than hidden size / "
                          f"head size (its config has no head-size key); heads can be cut for {can}; for "
                          f"{arch.name} cut intermediate_size or layers")


def prune_width(model: TaskModel, heads: int | None, intermediate: int | None,
                scores: Scores | None = None) -> TaskModel:
    """A copy of ``model`` with ``heads`` heads and ``intermediate`` FFN units per layer (None: keep all).

    ``scores`` ranks the units (default: weight magnitude).

    Raises:
        ConfigError: more heads or units than the model has, fewer heads in a family that cannot save them, or a
            family edgedistill has no adapter for.
    """
    arch = architecture_of(model.backbone, WHERE)
    config = model.backbone.config
    heads = heads or arch.num_heads(config)
    intermediate = intermediate or arch.ffn_size(config)
    check_width(arch, config, heads, intermediate)
    head_size = arch.head_size(config)
    scores = scores or [unit_weight_scores(arch, config, layer) for layer in model.layers]
    names = {module: name for name, module in model.backbone.named_modules()}
    state = dict(model.backbone.state_dict())
    for layer, (head_scores, unit_scores) in zip(model.layers, scores):
        rows = head_rows(keep_top(head_scores, heads), head_size)
        units = keep_top(unit_scores, intermediate)
        for path in (arch.query, arch.key, arch.value) if heads != arch.num_heads(config) else ():
            slice_projection(state, names[arch.projection(layer, path)], arch.conv1d, rows=rows)
        if heads != arch.num_heads(config):
            slice_projection(state, names[arch.projection(layer, arch.output)], arch.conv1d, cols=rows)
        for path in arch.ffn_in:
            slice_projection(state, names[arch.projection(layer, path)], arch.conv1d, rows=units)
        slice_projection(state, names[arch.projection(layer, arch.ffn_out)], arch.conv1d, cols=units)
    updates = {arch.heads_key: heads, arch.ffn_key: intermediate}
    if heads != arch.num_heads(config):
        updates[arch.head_size_key or ""] = head_size
    return with_backbone(model, rebuilt(model.backbone, updates, state))


def rebuilt(backbone: nn.Module, updates: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    """A fresh model of ``backbone``'s class with its config changed by ``updates``, loading ``state`` strictly.

    A BERT whose heads no longer span the hidden size becomes a ``pruned_bert`` (transformers' BERT derives the
    head size from the head count); a pruned one whose heads span it again becomes a plain ``bert``.
    """
    config: Any = copy.deepcopy(backbone.config)
    for key, value in updates.items():
        setattr(config, key, value)
    cls: Any = type(backbone)
    if config.model_type in ("bert", "pruned_bert"):
        from edgedistill.models.pruned_bert import bert_class_and_config

        cls, config = bert_class_and_config(type(backbone).__name__, config)
    new = cls(config)
    new.load_state_dict(state)
    new.train(backbone.training)
    first = next(backbone.parameters(), None)
    if first is not None:  # a bf16 or GPU model stays one (a fresh model is built in float32 on the CPU)
        new.to(device=first.device, dtype=first.dtype)
    return new  # type: ignore[no-any-return]


def with_backbone(model: TaskModel, backbone: nn.Module) -> TaskModel:
    """``model``'s head around another backbone."""
    return TaskModel(backbone, model.task, model.pooling, model.normalize, copy.deepcopy(model.dense),
                     model.dense_tanh)
