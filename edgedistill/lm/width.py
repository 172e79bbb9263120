"""Narrower decoder-LM students: Minitron-style width pruning of a Llama/Qwen2-family causal LM.

Three axes, each cut to the most important units (ranked by :mod:`edgedistill.lm.width_scores`, kept in their
original order), the same count in every layer but each layer choosing its own:

- **KV groups**: a group is one KV head and the query heads sharing it, so grouped-query attention stays valid.
  Its K/V rows, its query heads' Q rows and ``o_proj`` columns go; ``num_key_value_heads`` = groups,
  ``num_attention_heads`` = groups × heads per group, ``head_dim`` unchanged and written into the config.
- **FFN units**: gate/up rows and ``down_proj`` columns.
- **Hidden channels** (the residual stream): the embedding's columns, Q/K/V/gate/up input columns,
  ``o_proj``/``down_proj`` output rows, every RMSNorm gain, and ``lm_head``'s columns — one table with the
  embedding when the two are tied, so the student stays tied. Heads need not divide the new hidden size, since
  ``head_dim`` is explicit.

An RMSNorm over fewer channels divides by the RMS of the kept ones only: ``x·w·√H / √(Σx² + H·ε)``. With
``rescale_norms`` the kept gains are multiplied by √(H/H') and ε by H/H', which is exact when the cut channels
carry nothing (Σx² is unchanged, only the count H differs) and over-scales by up to √(H/H') when they carried as
much as the average kept channel. Minitron cuts the channels with the smallest normalised activations, so the
first case is the nearer; distillation repairs the rest. (Qwen3's per-head q/k norms share ``rms_norm_eps``;
their ε moves by the same factor, a negligible change.)

The sliced weights load, strictly, into a fresh model of the same class built from the changed config, so the
student saves with ``save_pretrained`` and loads with ``AutoModelForCausalLM.from_pretrained`` as itself.
"""

from __future__ import annotations

import copy
import math
from typing import Any, TypeVar

import torch
from torch import nn

from edgedistill.distill.width import head_rows, keep_top, rebuilt, slice_projection
from edgedistill.errors import ConfigError, InputError
from edgedistill.lm.width_scores import (
    WHERE,
    DecoderScores,
    decoder_architecture,
    decoder_weight_scores,
    gqa_shape,
    residual_norms,
    tied_embeddings,
)
from edgedistill.models.architectures import Architecture

State = dict[str, torch.Tensor]
LM = TypeVar("LM", bound=nn.Module)
NORM_EPS_KEY = "rms_norm_eps"  # the RMSNorm ε of every llama/qwen2-family config


def group_rows(groups: torch.Tensor, per_group: int, head_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q rows, K/V rows) owned by the KV groups ``groups``: group g has KV head g and query heads
    g·per_group … (g+1)·per_group − 1 (transformers' ``repeat_kv`` order)."""
    query_heads = (groups[:, None] * per_group + torch.arange(per_group)).flatten()
    return head_rows(query_heads, head_size), head_rows(groups, head_size)


def check_size(key: str, asked: int | None, have: int, what: str) -> int:
    """``asked`` (None: ``have``), checked to be between 1 and ``have``.

    Raises:
        ConfigError: outside that range.
    """
    if asked is None:
        return have
    if not 1 <= asked <= have:
        raise ConfigError(f"{WHERE}.{key}: {asked} is not possible; the teacher has {have} {what}, so give a "
                          f"number from 1 to {have} (or leave it out to keep all)")
    return asked


def check_scores(scores: DecoderScores, layers: int, kv_heads: int, intermediate: int, hidden: int) -> None:
    """Raises InputError when ``scores`` were computed on a model of another shape."""
    expected = {"groups": (kv_heads,), "units": (intermediate,)}
    problems = [f"{len(getattr(scores, axis))} layers of {axis} scores for {layers} layers"
                for axis in expected if len(getattr(scores, axis)) != layers]
    problems += [f"layer {i} {axis} scores of shape {tuple(t.shape)}, expected {shape}"
                 for axis, shape in expected.items() for i, t in enumerate(getattr(scores, axis))
                 if tuple(t.shape) != shape]
    if tuple(scores.hidden.shape) != (hidden,):
        problems.append(f"hidden scores of shape {tuple(scores.hidden.shape)}, expected ({hidden},)")
    if problems:
        raise InputError(f"{WHERE}: the importance scores do not fit this model ({problems[0]}); compute them on "
                         "the model being pruned")


def slice_attention(state: State, names: dict[nn.Module, str], arch: Architecture, layer: nn.Module,
                    groups: torch.Tensor, per_group: int, head_size: int) -> None:
    """Keep only the KV groups ``groups`` of one layer's attention (in ``state``)."""
    q_rows, kv_rows = group_rows(groups, per_group, head_size)
    slice_projection(state, names[arch.projection(layer, arch.query)], False, rows=q_rows)
    for path in (arch.key, arch.value):
        slice_projection(state, names[arch.projection(layer, path)], False, rows=kv_rows)
    slice_projection(state, names[arch.projection(layer, arch.output)], False, cols=q_rows)


def slice_ffn(state: State, names: dict[nn.Module, str], arch: Architecture, layer: nn.Module,
              units: torch.Tensor) -> None:
    """Keep only the FFN units ``units`` of one layer (in ``state``)."""
    for path in arch.ffn_in:
        slice_projection(state, names[arch.projection(layer, path)], False, rows=units)
    slice_projection(state, names[arch.projection(layer, arch.ffn_out)], False, cols=units)


def slice_residual(state: State, names: dict[nn.Module, str], arch: Architecture, model: nn.Module,
                   keep: torch.Tensor, norm_scale: float) -> None:
    """Keep only the residual-stream channels ``keep`` in every reader and writer (in ``state``)."""
    embedding = f"{names[model.get_input_embeddings()]}.weight"  # type: ignore[operator]
    state[embedding] = state[embedding][:, keep].contiguous()
    head = f"{names[model.get_output_embeddings()]}.weight"  # type: ignore[operator]
    if head in state:
        state[head] = state[embedding] if tied_embeddings(model) else state[head][:, keep].contiguous()
    for layer in arch.layer_list(model):
        for path in (arch.query, arch.key, arch.value, *arch.ffn_in):
            slice_projection(state, names[arch.projection(layer, path)], False, cols=keep)
        for path in (arch.output, arch.ffn_out):
            slice_projection(state, names[arch.projection(layer, path)], False, rows=keep)
    for norm in residual_norms(arch, model):
        name = f"{names[norm]}.weight"
        state[name] = state[name][keep] * norm_scale


def prune_decoder_width(model: LM, kv_groups: int | None, intermediate_size: int | None, hidden_size: int | None,
                        scores: DecoderScores | None = None, rescale_norms: bool = True) -> LM:
    """A new, narrower copy of a Llama/Qwen2-family causal LM (``model`` is untouched).

    ``kv_groups`` / ``intermediate_size`` / ``hidden_size``: how many KV groups, FFN units per layer and residual
    channels to keep (None: all). ``scores`` ranks the units (default: weight magnitude; Minitron's activation
    ranking comes from :func:`~edgedistill.lm.width_scores.decoder_activation_scores`). ``rescale_norms``: scale
    the kept RMSNorm gains by √(H/H') and ε by H/H' (see the module docstring).

    Raises:
        ConfigError: a size below 1 or above the model's, or a model outside the llama/qwen2 families.
        InputError: ``scores`` computed on a model of another shape.
    """
    arch = decoder_architecture(model)
    config: Any = model.config
    kv_heads, per_group, head_size = gqa_shape(arch, config)
    heads_text = f"KV heads (a group: 1 KV head and its {per_group} query heads)"
    groups = check_size("kv_groups", kv_groups, kv_heads, heads_text)
    intermediate = check_size("intermediate_size", intermediate_size, arch.ffn_size(config), "FFN units per layer")
    hidden = check_size("hidden_size", hidden_size, arch.hidden_size(config), "hidden channels")
    layers = arch.layer_list(model)
    scores = decoder_weight_scores(model) if scores is None else scores
    check_scores(scores, len(layers), kv_heads, arch.ffn_size(config), arch.hidden_size(config))
    state, names = dict(model.state_dict()), {module: name for name, module in model.named_modules()}
    for layer, group_scores, unit_scores in zip(layers, scores.groups, scores.units):
        if groups != kv_heads:
            slice_attention(state, names, arch, layer, keep_top(group_scores, groups), per_group, head_size)
        if intermediate != arch.ffn_size(config):
            slice_ffn(state, names, arch, layer, keep_top(unit_scores, intermediate))
    updates: dict[str, Any] = {arch.kv_heads_key or "": groups, arch.heads_key: groups * per_group,
                               arch.head_size_key or "": head_size, arch.ffn_key: intermediate,
                               arch.hidden_key: hidden}
    if hidden != arch.hidden_size(config):
        ratio = arch.hidden_size(config) / hidden if rescale_norms else 1.0
        slice_residual(state, names, arch, model, keep_top(scores.hidden, hidden), math.sqrt(ratio))
        updates[NORM_EPS_KEY] = getattr(config, NORM_EPS_KEY) * ratio
    student: Any = rebuilt(model, updates, state)  # of ``model``'s class
    if getattr(model, "generation_config", None) is not None:
        student.generation_config = copy.deepcopy(model.generation_config)
    return student
