"""Hidden-size reduction: keep the most important units of a BERT-style model's residual stream.

Every module that reads or writes the residual stream is sliced to the kept units ``K`` (in their original
order): the embedding tables and embedding LayerNorm (columns), each layer's Q/K/V and FFN-input projections
(input columns), its attention-output and FFN-output projections (output rows) and both LayerNorms, the pooler
and a classifier's input. Heads and FFN units keep their widths (prune those with ``heads`` /
``intermediate_size``). A LayerNorm over fewer units normalises with their own mean and variance, so the cut
model is an approximation that distillation then repairs.

Importance of a unit: ``weight`` — the L2 norm of every weight that reads or writes it (embedding columns,
projection rows/columns, LayerNorm gains); ``activation`` — its mean |value| in the residual stream (embedding
output and every layer's output) over held-out texts, padding excluded.

A sentence-embedding student gets a ``Dense`` projection (hidden' → the old output width) initialised to put
each kept unit back in its place, so it still emits embeddings in the teacher's space (drop-in for an index of
teacher embeddings) and the embedding losses compare like with like.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from edgedistill.distill.width import keep_top, rebuilt, sliced, weight_of, with_backbone
from edgedistill.errors import ConfigError
from edgedistill.models.architectures import Architecture, architecture_of, families
from edgedistill.models.task_model import TaskModel, model_inputs

WHERE = "student.from_teacher.hidden_size"


def base_of(model: TaskModel) -> Any:
    """The BERT encoder, checked to be of a family whose residual stream can be narrowed and saved.

    Raises:
        ConfigError: another family (the message names those that can).
    """
    arch = architecture_of(model.backbone, WHERE)
    if not arch.hidden_pruning:
        can = ", ".join(f.name for f in families.FAMILIES if f.hidden_pruning)
        raise ConfigError(f"{WHERE}: the residual stream of a {arch.name} model cannot be narrowed and saved; "
                          f"supported for {can}; for {arch.name} cut layers or intermediate_size")
    return model.base_model


def embedding_tables(base: Any) -> list[nn.Embedding]:
    emb = base.embeddings
    return [t for t in (emb.word_embeddings, getattr(emb, "position_embeddings", None),
                        getattr(emb, "token_type_embeddings", None)) if t is not None]


def layer_norms(model: TaskModel) -> list[nn.LayerNorm]:
    m: Any = model
    return [base_of(m).embeddings.LayerNorm,
            *(n for layer in m.layers for n in (layer.attention.output.LayerNorm, layer.output.LayerNorm))]


def residual_projection_terms(arch: Architecture, layer: nn.Module) -> list[torch.Tensor]:
    """(H,) squared weights per residual-stream unit, one term per projection of a layer of family ``arch``: the
    input columns of Q/K/V and the FFN input(s), which read the stream, and the output rows of the attention and
    FFN outputs, which write it."""
    readers = dict.fromkeys((arch.query, arch.key, arch.value, *arch.ffn_in))  # GPT-2's Q/K/V share one path
    terms = [weight_of(arch.projection(layer, path), arch.conv1d).pow(2).sum(0) for path in readers]
    return terms + [weight_of(arch.projection(layer, path), arch.conv1d).pow(2).sum(1)
                    for path in (arch.output, arch.ffn_out)]


def residual_weight_scores(model: TaskModel) -> torch.Tensor:
    """(H,) importance of each residual-stream unit from the weights that read or write it."""
    base_of(model)
    terms = [t.weight.detach().pow(2).sum(0) for t in embedding_tables(base_of(model))]
    for layer in model.layers:
        terms += residual_projection_terms(families.BERT, layer)
    terms += [n.weight.detach().pow(2) for n in layer_norms(model)]
    return torch.stack(terms).sum(0).sqrt()


def residual_activation_scores(model: TaskModel, tokenizer: Any, texts: list[str], max_length: int) -> torch.Tensor:
    """(H,) mean |value| of each unit over the embedding output and every layer's output, padding excluded."""
    total = torch.zeros(model.backbone.config.hidden_size)
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            enc = model_inputs(model, tokenizer, texts[start : start + 32], max_length)
            out = model.backbone(**enc, output_hidden_states=True)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for hidden in out.hidden_states:
                total += (hidden.abs() * mask).sum((0, 1))
    return total


def sliced_embedding(table: nn.Embedding, keep: torch.Tensor) -> nn.Embedding:
    new = nn.Embedding(table.num_embeddings, len(keep), padding_idx=table.padding_idx)
    with torch.no_grad():
        new.weight.copy_(table.weight[:, keep])
    return new


def sliced_norm(norm: nn.LayerNorm, keep: torch.Tensor) -> nn.LayerNorm:
    new = nn.LayerNorm(len(keep), eps=norm.eps)
    with torch.no_grad():
        new.weight.copy_(norm.weight[keep])
        new.bias.copy_(norm.bias[keep])
    return new


def slice_residual(model: TaskModel, keep: torch.Tensor) -> None:
    """Slice every module on the residual stream of ``model`` (in place) to the units ``keep``."""
    base = base_of(model)
    emb = base.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        if getattr(emb, name, None) is not None:
            setattr(emb, name, sliced_embedding(getattr(emb, name), keep))
    emb.LayerNorm = sliced_norm(emb.LayerNorm, keep)
    for layer in model.layers:
        m: Any = layer
        attn = m.attention.self
        attn.query, attn.key, attn.value = (sliced(getattr(attn, k), cols=keep) for k in ("query", "key", "value"))
        m.attention.output.dense = sliced(m.attention.output.dense, rows=keep)
        m.attention.output.LayerNorm = sliced_norm(m.attention.output.LayerNorm, keep)
        m.intermediate.dense = sliced(m.intermediate.dense, cols=keep)
        m.output.dense = sliced(m.output.dense, rows=keep)
        m.output.LayerNorm = sliced_norm(m.output.LayerNorm, keep)
    if getattr(base, "pooler", None) is not None:
        base.pooler.dense = sliced(base.pooler.dense, rows=keep, cols=keep)
    if getattr(model.backbone, "classifier", None) is not None:
        model.backbone.classifier = sliced(model.backbone.classifier, cols=keep)


def restoring_dense(model: TaskModel, keep: torch.Tensor) -> nn.Linear:
    """Linear (kept units → the model's old output width) that puts each kept unit back in its place."""
    if model.dense is not None:
        return sliced(model.dense, cols=keep)
    width = model.backbone.config.hidden_size
    dense = nn.Linear(len(keep), width)
    with torch.no_grad():
        dense.weight.zero_()
        dense.weight[keep, torch.arange(len(keep))] = 1.0
        dense.bias.zero_()
    return dense


def prune_hidden(model: TaskModel, hidden: int, scores: torch.Tensor | None = None) -> TaskModel:
    """A copy of ``model`` whose residual stream keeps the ``hidden`` most important units.

    ``scores`` ranks the units (default: weight magnitude).

    Raises:
        ConfigError: ``hidden`` exceeds the model's hidden size, or the model is not BERT-style.
    """
    base_of(model)
    config = model.backbone.config
    if hidden > config.hidden_size:
        raise ConfigError(f"student.from_teacher.hidden_size: {hidden} > the teacher's {config.hidden_size}")
    if hidden == config.hidden_size:
        return model
    scores = residual_weight_scores(model) if scores is None else scores
    keep = keep_top(scores, hidden)
    student = copy.deepcopy(model)
    if student.task == "sentence-embedding":
        student.dense = restoring_dense(student, keep)
    slice_residual(student, keep)
    head_size = families.BERT.head_size(config)
    backbone = rebuilt(student.backbone, {"hidden_size": hidden, "attention_head_size": head_size},
                       student.backbone.state_dict())
    return with_backbone(student, backbone)
