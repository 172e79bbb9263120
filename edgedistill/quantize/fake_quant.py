"""Fake quantization for quantization-aware distillation: int8 rounding in the forward pass, straight-through gradients.

The arithmetic is ONNX Runtime's static QDQ quantizer's, so a model trained here and written as QDQ by
:mod:`qad` computes what was trained:

- weights of each ``nn.Linear``: symmetric, per output channel (or per tensor), ``scale = max|w| / qmax`` with
  qmax 127 (64 with ``reduce_range``), recomputed from the current weights every step — ORT recomputes it the
  same way from the exported weights, so weight scales need no learning;
- the input of each ``nn.Linear``: per tensor, uint8 with a zero point (fixed at calibration) or int8
  symmetric; the scale starts at the calibrated MinMax value and is learned (LSQ, Esser et al. 2020).
  Linears fed the very same tensor (query, key, value) share one quantizer, as they share one Q/DQ in ONNX.

Rounding is half-to-even in torch, numpy and ORT's QuantizeLinear; quantization is ``clamp(round(x / s) + z)``
in all three.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

TINY = float(np.finfo(np.float32).tiny)


@dataclass(frozen=True)
class QuantSpec:
    """Integer grids: activations ``[act_qmin, act_qmax]``, weights ``[-weight_qmax, weight_qmax]``."""

    act_qmin: int = 0
    act_qmax: int = 255
    symmetric_activations: bool = False
    weight_qmax: int = 127
    per_channel: bool = True

    @classmethod
    def from_settings(cls, symmetric_activations: bool, reduce_range: bool, per_channel: bool) -> QuantSpec:
        """ORT's grids: u8 [0, 255] or symmetric s8 [-127, 127] activations; s8 weights ±127, ±64 reduced."""
        qmin, qmax = (-127, 127) if symmetric_activations else (0, 255)
        return cls(qmin, qmax, symmetric_activations, 64 if reduce_range else 127, per_channel)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def fake_quant(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | float, qmin: int,
               qmax: int) -> torch.Tensor:
    """``(clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale``.

    Gradients: 1 for ``x`` inside the grid, 0 outside (clipped); LSQ's for ``scale``.
    """
    q = torch.clamp(round_ste(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def weight_scale(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    """Symmetric scale (out, 1) per output channel, or () per tensor, of a Linear weight (out, in); no gradient."""
    w = weight.detach().abs()
    absmax = w.amax(dim=1, keepdim=True) if spec.per_channel else w.amax()
    return (absmax / spec.weight_qmax).clamp_min(TINY)


def fake_quant_weight(weight: torch.Tensor, spec: QuantSpec) -> torch.Tensor:
    return fake_quant(weight, weight_scale(weight, spec), 0.0, -spec.weight_qmax, spec.weight_qmax)


def activation_qparams(rmin: float, rmax: float, spec: QuantSpec) -> tuple[float, int]:
    """(scale, zero point) of a range, as ORT's ``compute_scale_zp``: the range is widened to hold 0."""
    rmin, rmax = min(rmin, 0.0), max(rmax, 0.0)
    if spec.symmetric_activations:
        rmax = max(-rmin, rmax)
        rmin = -rmax
    scale = (rmax - rmin) / (spec.act_qmax - spec.act_qmin)  # float64, as ORT; stored as float32
    if scale < TINY:
        return 1.0, 0
    if spec.symmetric_activations:
        return float(np.float32(scale)), round((spec.act_qmin + spec.act_qmax) / 2)
    return float(np.float32(scale)), int(np.round(spec.act_qmin - rmin / scale))


def qparams_range(scale: float, zero_point: int, spec: QuantSpec) -> tuple[float, float]:
    """The range ORT turns back into exactly (``scale``, ``zero_point``)."""
    return scale * (spec.act_qmin - zero_point), scale * (spec.act_qmax - zero_point)


class ActivationQuantizer(nn.Module):
    """Per-tensor fake quantization with a learned scale; ``observing`` records the MinMax range instead."""

    zero_point: torch.Tensor
    observed: torch.Tensor  # (min, max) seen while observing

    def __init__(self, spec: QuantSpec):
        super().__init__()
        self.spec = spec
        self.scale = nn.Parameter(torch.ones(()))
        self.register_buffer("zero_point", torch.zeros(()))
        self.register_buffer("observed", torch.tensor([float("inf"), float("-inf")]))
        self.observing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            lo, hi = torch.aminmax(x.detach())
            self.observed[0] = torch.minimum(self.observed[0], lo.float())
            self.observed[1] = torch.maximum(self.observed[1], hi.float())
            return x
        return fake_quant(x, self.scale.clamp_min(TINY), self.zero_point, self.spec.act_qmin, self.spec.act_qmax)

    def init_from_observed(self) -> None:
        scale, zero_point = activation_qparams(float(self.observed[0]), float(self.observed[1]), self.spec)
        with torch.no_grad():
            self.scale.fill_(scale)
            self.zero_point.fill_(zero_point)

    def qparams(self) -> tuple[float, int]:
        """The current (scale, zero point), the scale rounded to float32 as ONNX stores it."""
        return float(np.float32(self.scale.detach().clamp_min(TINY).item())), int(self.zero_point.item())


class QuantLinear(nn.Module):
    """An ``nn.Linear`` with fake-quantized input and weight; ``linear`` is the original module, trained in place."""

    def __init__(self, linear: nn.Linear, spec: QuantSpec):
        super().__init__()
        self.linear = linear
        self.spec = spec
        self.input_quantizer: ActivationQuantizer | None = None  # set (and shared) by the calibration

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quantizer is not None:
            x = self.input_quantizer(x)
            if self.input_quantizer.observing:
                return self.linear(x)
        return F.linear(x, fake_quant_weight(self.linear.weight, self.spec), self.linear.bias)


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def wrap_linears(model: nn.Module, spec: QuantSpec, skip: Iterable[str] = ()) -> dict[str, QuantLinear]:
    """Replace every ``nn.Linear`` of ``model`` (except the paths in ``skip``) by a :class:`QuantLinear`."""
    skipped = set(skip)
    paths = [p for p, m in model.named_modules() if isinstance(m, nn.Linear) and p not in skipped]
    wrapped = {}
    for path in paths:
        wrapped[path] = QuantLinear(model.get_submodule(path), spec)  # type: ignore[arg-type]
        set_module(model, path, wrapped[path])
    return wrapped


def unwrap_linears(model: nn.Module) -> nn.Module:
    """Put the plain (trained) ``nn.Linear`` back wherever a :class:`QuantLinear` is; returns ``model``."""
    for path in [p for p, m in model.named_modules() if isinstance(m, QuantLinear)]:
        set_module(model, path, model.get_submodule(path).linear)  # type: ignore[arg-type]
    return model


@torch.no_grad()
def share_input_quantizers(model: nn.Module, wrapped: dict[str, QuantLinear], batch: dict[str, Any]) -> int:
    """Give each :class:`QuantLinear` an input quantizer, one per distinct input tensor; returns how many.

    One forward pass records every wrapped Linear's input; Linears fed the same tensor object share.
    The inputs stay referenced until grouped, so no tensor id is reused within the pass.
    """
    inputs: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, p=p: inputs.__setitem__(p, args[0]))
             for p, m in wrapped.items()]
    try:
        model(**batch)
    finally:
        for h in hooks:
            h.remove()
    by_tensor: dict[int, ActivationQuantizer] = {}
    for path, module in wrapped.items():
        if path in inputs:  # a Linear the forward never calls keeps float inputs
            module.input_quantizer = by_tensor.setdefault(id(inputs[path]), ActivationQuantizer(module.spec))
    return len(by_tensor)


def input_quantizers(model: nn.Module) -> list[ActivationQuantizer]:
    return list(dict.fromkeys(m for m in model.modules() if isinstance(m, ActivationQuantizer)))


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[dict[str, Any]]) -> None:
    """MinMax ranges of every input quantizer over ``batches`` (float forward), then scales from them."""
    quantizers = input_quantizers(model)
    for q in quantizers:
        q.observing = True
    try:
        for batch in batches:
            model(**batch)
    finally:
        for q in quantizers:
            q.observing = False
    for q in quantizers:
        q.init_from_observed()
