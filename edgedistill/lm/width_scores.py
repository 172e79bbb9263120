"""How important each KV group, FFN unit and hidden channel of a Llama/Qwen2-family decoder LM is, for
:func:`edgedistill.lm.width.prune_decoder_width`.

Activation-based importance follows Minitron (Muralidharan et al. 2024, "Compact Language Models via Pruning and
Knowledge Distillation", arXiv:2407.14679, §2.2 "Importance Analysis"): forward passes only, over a few
calibration texts, each axis scored by the activations of the layer that produces it —

- a head by the L2 norm of its attention output ``Attn(XW_Qⁱ, XW_Kⁱ, XW_Vⁱ)`` (the head's slice of ``o_proj``'s
  input); a KV group (one KV head and the query heads sharing it, the unit GQA lets us remove) by the L2 norm of
  its heads' scores;
- an FFN unit by its activation, here the gated product ``act(gate(x)) · up(x)`` that ``down_proj`` reads;
- a hidden (embedding) channel by its value in the outputs of the RMSNorms (``LN(X)ᵢ`` in the paper): every
  layer's ``input_layernorm`` and ``post_attention_layernorm`` and the final ``norm``, summed over the norms.

Magnitudes are aggregated as the paper recommends for width pruning (its best practice: batch = L2, sequence =
mean): ``|a|`` is averaged over each text's real tokens (padding excluded), then the per-text means are combined
by their L2 norm. NVIDIA's Model Optimizer implements Minitron the same way (``L2NormHook``: ``abs().mean(seq)``
then ``pow(2).sum(batch)`` and a square root).

Weight magnitude (:func:`decoder_weight_scores`, the fallback when no texts are given): the L2 norm of every
weight that belongs to the unit — a group's Q rows, K/V rows and ``o_proj`` columns; a unit's gate/up rows and
``down_proj`` column; a channel's embedding column, Q/K/V/gate/up input columns, ``o_proj``/``down_proj`` output
rows, RMSNorm gains and (untied) ``lm_head`` column.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from edgedistill.distill.hidden_width import residual_projection_terms
from edgedistill.distill.width import ffn_weight_scores
from edgedistill.errors import ConfigError, InputError
from edgedistill.models.architectures import Architecture, architecture_of, families

WHERE = "student.from_teacher"
LAYER_NORMS = ("input_layernorm", "post_attention_layernorm")  # a Llama layer's two RMSNorms


@dataclass(frozen=True)
class DecoderScores:
    """Importance of the prunable units of a decoder LM, higher = keep.

    ``groups[i]``: (kv_heads,) for layer i; ``units[i]``: (intermediate,) for layer i; ``hidden``: (hidden,), one
    ranking for the whole residual stream (every layer reads and writes the same channels).
    """

    groups: tuple[torch.Tensor, ...]
    units: tuple[torch.Tensor, ...]
    hidden: torch.Tensor


def decoder_architecture(model: nn.Module) -> Architecture:
    """The adapter of a Llama/Qwen2-family model (Mistral, Qwen3 share the layout).

    Raises:
        ConfigError: another family (GPT-2, an encoder) or one edgedistill has no adapter for.
    """
    arch = architecture_of(model, WHERE)
    if arch not in (families.LLAMA, families.QWEN2):
        raise ConfigError(f"{WHERE}: decoder width pruning supports the llama and qwen2 families "
                          f"({', '.join(families.LLAMA.model_types + families.QWEN2.model_types)}), not "
                          f"{arch.name}; for {arch.name} cut layers instead")
    return arch


def gqa_shape(arch: Architecture, config: Any) -> tuple[int, int, int]:
    """(KV heads, query heads per KV head, head size) of a config."""
    kv_heads = int(getattr(config, arch.kv_heads_key or "", None) or arch.num_heads(config))
    return kv_heads, arch.num_heads(config) // kv_heads, arch.head_size(config)


def residual_norms(arch: Architecture, model: nn.Module) -> list[nn.Module]:
    """Every RMSNorm over the residual stream: each layer's two, then the final one."""
    norms = [layer.get_submodule(name) for layer in arch.layer_list(model) for name in LAYER_NORMS]
    return [*norms, arch.base(model).norm]


def tied_embeddings(model: nn.Module) -> bool:
    """Whether the LM head shares the input embedding's weight (SmolLM2, small Qwen2 models)."""
    lm: Any = model
    head = lm.get_output_embeddings()
    return head is None or head.weight is lm.get_input_embeddings().weight


def squared_weight(module: Any) -> torch.Tensor:
    """A module's weight, detached and squared."""
    return module.weight.detach().pow(2)  # type: ignore[no-any-return]


def group_weight_scores(arch: Architecture, config: Any, layer: nn.Module) -> torch.Tensor:
    """(kv_heads,) L2 norm of each KV group's Q rows, K and V rows and ``o_proj`` columns."""
    kv_heads, per_group, d = gqa_shape(arch, config)
    q = squared_weight(arch.projection(layer, arch.query)).view(kv_heads, per_group * d, -1).sum((1, 2))
    k, v = (squared_weight(arch.projection(layer, p)).view(kv_heads, d, -1).sum((1, 2)) for p in (arch.key, arch.value))
    out = squared_weight(arch.projection(layer, arch.output)).view(-1, kv_heads, per_group * d).sum((0, 2))
    return (q + k + v + out).sqrt()


def hidden_weight_scores(arch: Architecture, model: nn.Module) -> torch.Tensor:
    """(hidden,) L2 norm of every weight that reads or writes each residual-stream channel."""
    lm: Any = model
    terms = [squared_weight(lm.get_input_embeddings()).sum(0)]
    if not tied_embeddings(model):
        terms.append(squared_weight(lm.get_output_embeddings()).sum(0))
    for layer in arch.layer_list(model):
        terms += residual_projection_terms(arch, layer)
    terms += [squared_weight(norm) for norm in residual_norms(arch, model)]
    return torch.stack(terms).sum(0).sqrt()


def decoder_weight_scores(model: nn.Module) -> DecoderScores:
    """Importance of every KV group, FFN unit and hidden channel from weight magnitude (no data needed)."""
    arch = decoder_architecture(model)
    layers = arch.layer_list(model)
    return DecoderScores(groups=tuple(group_weight_scores(arch, model.config, layer) for layer in layers),
                         units=tuple(ffn_weight_scores(arch, layer) for layer in layers),
                         hidden=hidden_weight_scores(arch, model))


class MinitronAggregate:
    """Per-channel Minitron aggregation of activation magnitudes: mean over each text's real tokens, L2 over
    texts. Holds Σ_texts (mean_tokens |a|)² until :meth:`result` takes the square root."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None

    def add(self, magnitudes: torch.Tensor, mask: torch.Tensor) -> None:
        """``magnitudes``: (B, S, C) non-negative; ``mask``: (B, S), 1 on real tokens."""
        m = mask.to(magnitudes.dtype).unsqueeze(-1)  # (B, S, 1)
        per_text = (magnitudes * m).sum(1) / m.sum(1).clamp(min=1)  # (B, C)
        square = per_text.pow(2).sum(0).cpu()
        self.total = square if self.total is None else self.total + square

    def result(self) -> torch.Tensor:
        assert self.total is not None, "no activations recorded"
        return self.total.sqrt()


class ActivationRecorder:
    """Forward hooks on every place Minitron reads activations, each feeding one :class:`MinitronAggregate`."""

    def __init__(self, arch: Architecture, model: nn.Module) -> None:
        self.arch, self.model = arch, model
        self.mask = torch.ones(0)
        self.heads: list[MinitronAggregate] = []
        self.units: list[MinitronAggregate] = []
        self.norms: list[MinitronAggregate] = []
        self.handles: list[Any] = []

    def attach(self) -> None:
        """Hook ``o_proj``'s and ``down_proj``'s inputs in every layer and every residual RMSNorm's output."""
        d = gqa_shape(self.arch, self.model.config)[2]
        for layer in self.arch.layer_list(self.model):
            self.heads.append(self.input_hook(self.arch.projection(layer, self.arch.output), d))
            self.units.append(self.input_hook(self.arch.projection(layer, self.arch.ffn_out), None))
        self.norms = [self.output_hook(norm) for norm in residual_norms(self.arch, self.model)]

    def input_hook(self, module: nn.Module, head_size: int | None) -> MinitronAggregate:
        """Aggregate ``module``'s input: per channel (``head_size`` None) or per head (norm over its channels)."""
        aggregate = MinitronAggregate()

        def record(_m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            x = inputs[0].detach().float()  # (B, S, W)
            value = x.abs() if head_size is None else x.view(*x.shape[:2], -1, head_size).norm(dim=-1)
            aggregate.add(value, self.mask)

        self.handles.append(module.register_forward_pre_hook(record))
        return aggregate

    def output_hook(self, module: nn.Module) -> MinitronAggregate:
        """Aggregate ``module``'s output per channel."""
        aggregate = MinitronAggregate()

        def record(_m: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            aggregate.add(output.detach().float().abs(), self.mask)

        self.handles.append(module.register_forward_hook(record))
        return aggregate

    def detach(self) -> None:
        for handle in self.handles:
            handle.remove()

    def scores(self) -> DecoderScores:
        kv_heads = gqa_shape(self.arch, self.model.config)[0]
        groups = tuple(a.result().view(kv_heads, -1).norm(dim=1) for a in self.heads)  # L2 over a group's heads
        return DecoderScores(groups=groups, units=tuple(a.result() for a in self.units),
                             hidden=torch.stack([a.result() for a in self.norms]).sum(0))


def calibration_batches(tokenizer: Any, texts: list[str], max_length: int, batch_size: int,
                        device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    """Tokenised batches of ``texts``, padded on the right (a causal LM's real tokens then see no padding and
    keep their positions); one text a batch when the tokenizer has no pad token."""
    step = batch_size if getattr(tokenizer, "pad_token", None) is not None else 1
    for start in range(0, len(texts), step):
        enc = tokenizer(texts[start : start + step], padding=True, padding_side="right", truncation=True,
                        max_length=max_length, return_tensors="pt")
        yield {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}


def decoder_activation_scores(model: nn.Module, tokenizer: Any, texts: list[str], max_length: int,
                              batch_size: int = 8) -> DecoderScores:
    """Minitron's activation-based importance of every KV group, FFN unit and hidden channel on ``texts``.

    Raises:
        InputError: no calibration texts.
        ConfigError: a model outside the llama/qwen2 families.
    """
    arch = decoder_architecture(model)
    if not texts:
        raise InputError(f"{WHERE}: no calibration texts for activation-based importance; give a few hundred "
                         "texts, or none at all to rank by weight magnitude")
    device = next(model.parameters()).device
    recorder = ActivationRecorder(arch, model)
    recorder.attach()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in calibration_batches(tokenizer, texts, max_length, batch_size, device):
                recorder.mask = batch["attention_mask"]
                model(**batch, use_cache=False)
    finally:
        recorder.detach()
        model.train(was_training)
    return recorder.scores()


def decoder_scores(model: nn.Module, tokenizer: Any = None, texts: list[str] | None = None,
                   max_length: int = 256) -> DecoderScores:
    """Activation-based importance on ``texts`` when there are any, else weight magnitude."""
    if texts:
        return decoder_activation_scores(model, tokenizer, texts, max_length)
    return decoder_weight_scores(model)

