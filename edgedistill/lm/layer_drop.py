"""Decoder students by depth: which of the teacher's layers to keep.

``block-influence`` (Men et al. 2024, "ShortGPT: Layers in Large Language Models are More Redundant Than You
Expect"): a layer whose output hidden states point where its inputs did (1 − cosine, averaged over tokens) changes
little, so it goes first. ``kl``: drop, one layer at a time, the one whose removal raises the KL from the teacher's
next-token distribution least on held-out text (costlier: one forward pass per remaining layer per removal, but it
measures what the student is trained on).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from edgedistill.errors import ConfigError
from edgedistill.models.architectures import architecture_of


def calibration_batch(tokenizer: Any, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    tokenizer.padding_side = "right"
    return dict(tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length))


@torch.no_grad()
def block_influence(model: Any, batch: dict[str, torch.Tensor]) -> list[float]:
    """1 − mean cosine between each layer's input and output hidden states, over the non-padding tokens."""
    arch = architecture_of(model, "student.from_teacher")
    mask = batch["attention_mask"].bool()
    seen: list[float] = []

    def hook(_module: Any, args: Any, kwargs: Any, output: Any) -> None:
        x_in = args[0] if args else kwargs["hidden_states"]
        x_out = output[0] if isinstance(output, tuple) else output
        cos = torch.nn.functional.cosine_similarity(x_in.float(), x_out.float(), dim=-1)
        seen.append(float(1.0 - cos[mask].mean()))

    handles = [layer.register_forward_hook(hook, with_kwargs=True) for layer in arch.layer_list(model)]
    try:
        model(**batch, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return seen


@contextmanager
def without_layers(model: Any, drop: set[int]) -> Iterator[Any]:
    """``model`` running without the layers ``drop`` for the duration (restored after, layer indices included)."""
    arch = architecture_of(model, "student.from_teacher")
    layers = list(arch.layer_list(model))
    indices = [getattr(m, "layer_idx", None) for layer in layers for m in layer.modules()]
    arch.replace_layers(model, [layer for i, layer in enumerate(layers) if i not in drop])
    try:
        yield model
    finally:
        arch.replace_layers(model, layers)
        modules = [m for layer in layers for m in layer.modules()]
        for module, index in zip(modules, indices):
            if index is not None:
                module.layer_idx = index


@torch.no_grad()
def mean_kl(model: Any, batch: dict[str, torch.Tensor], reference: torch.Tensor) -> float:
    """KL(reference || model) per non-padding position (``reference``: the teacher's log-probabilities)."""
    logp = torch.log_softmax(model(**batch, use_cache=False).logits.float(), dim=-1)
    kl = (reference.exp() * (reference - logp)).sum(-1)
    return float(kl[batch["attention_mask"].bool()].mean())


def kl_ranking(model: Any, batch: dict[str, torch.Tensor], drop_count: int) -> tuple[list[int], list[float]]:
    """Greedy: the layers to drop, in the order dropped, and the KL after each removal."""
    with torch.no_grad():
        reference = torch.log_softmax(model(**batch, use_cache=False).logits.float(), dim=-1)
    dropped: list[int] = []
    kls: list[float] = []
    count = len(architecture_of(model).layer_list(model))
    for _ in range(drop_count):
        trials = {}
        for layer in (i for i in range(count) if i not in dropped):
            with without_layers(model, {*dropped, layer}):
                trials[layer] = mean_kl(model, batch, reference)
        best = min(trials, key=lambda i: trials[i])
        dropped.append(best)
        kls.append(trials[best])
    return dropped, kls


def choose_decoder_layers(model: Any, tokenizer: Any, method: str, keep: int, texts: list[str],
                          max_length: int) -> tuple[list[int], dict[str, Any]]:
    """The teacher layers to keep (increasing) by ``method`` (``block-influence`` or ``kl``), and the scores.

    Raises:
        ConfigError: ``keep`` is not fewer layers than the teacher has, or no calibration texts.
    """
    count = len(architecture_of(model, "student.from_teacher").layer_list(model))
    if not 0 < keep < count:
        raise ConfigError(f"student.from_teacher.num_layers: {keep} layers of a {count}-layer teacher; keep "
                          f"between 1 and {count - 1}")
    if not texts:
        raise ConfigError(f"student.from_teacher.layers '{method}' needs held-out text to score layers: give "
                          "data.train")
    batch = calibration_batch(tokenizer, texts, max_length)
    if method == "block-influence":
        scores = block_influence(model, batch)
        drop = sorted(range(count), key=lambda i: scores[i])[: count - keep]
        return sorted(set(range(count)) - set(drop)), {"block_influence": [round(s, 5) for s in scores]}
    dropped, kls = kl_ranking(model, batch, count - keep)
    return sorted(set(range(count)) - set(dropped)), {"kl_dropped": dropped, "kl_after_each": kls}


def keep_layers(model: Any, layers: list[int]) -> Any:
    """A deep copy of ``model`` with only ``layers`` (tied embeddings stay tied: deepcopy keeps shared tensors).

    Raises:
        ConfigError: a layer index the model does not have.
    """
    arch = architecture_of(model, "student.from_teacher")
    count = len(arch.layer_list(model))
    missing = [i for i in layers if i >= count]
    if missing:
        raise ConfigError(f"student.from_teacher.layers: layer {missing[0]} does not exist; the teacher has {count} "
                          f"layers (0-{count - 1})")
    student = copy.deepcopy(model)
    kept = arch.layer_list(student)
    arch.replace_layers(student, [kept[i] for i in layers])
    return student
