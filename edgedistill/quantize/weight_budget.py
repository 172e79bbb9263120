"""Accuracy budget for weight-only quantization: the fewest groups at a higher precision (INT8, or float) that keep
the quality asked for, in the text-generation Task's own metric — top-1 agreement and KL to the teacher under teacher
forcing on its answers — against the float model.

1. the float model and the model with every group at ``bits`` are scored; if the budget holds, done;
2. sensitivity: each group alone at ``bits``, the rest at ``keep``; ranked by the KL it adds over the model with
   every group at ``keep`` (``sensitivity.json``, ``.md``, ``.png``);
3. the most sensitive groups are raised one at a time, each mix scored, until the budget holds
   (:func:`~edgedistill.quantize.mixes.greedy_mixes`).

Each mix's record carries its weight bytes: what decode reads per token, so what its token rate is bound by. If no
mix meets the budget, the best one that still quantizes something is kept, ``met: false``, with a warning.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx

from edgedistill.artifacts import atomic_write_bytes
from edgedistill.config import WeightOnly, WeightOnlyBudget
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import model_bytes
from edgedistill.progress import progress_bar
from edgedistill.quantize.common import ONNX_NAME
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.groups import NodeGroup, node_groups
from edgedistill.quantize.mixes import chosen_mix, greedy_mixes
from edgedistill.quantize.sensitivity import plot
from edgedistill.quantize.weight_only import lm_head_nodes, prepared, quantize_proto, save_quantized, weight_matmuls

log = logging.getLogger(__name__)
MB = 2**20


@dataclass(frozen=True)
class LmQuality:
    """Teacher-forced agreement with the teacher on its answers: top-1 share and mean KL (nats per token)."""

    top1_agreement: float
    kl: float

    def as_dict(self) -> dict[str, float]:
        return {"top1_agreement": round(self.top1_agreement, 6), "kl": round(self.kl, 6)}


@dataclass
class WeightMix:
    """One candidate: the groups raised to ``keep`` (in the order they were added), its quality and weight size."""

    raised: list[str]
    quality: LmQuality
    weights_mb: float
    low_nodes: int


@dataclass(frozen=True)
class GroupKl:
    """One group alone at ``bits``: its agreement, KL, and the KL it adds (``drop``, what the plot shows)."""

    label: str
    nodes: int
    top1_agreement: float
    kl: float
    drop: float


def meets(budget: WeightOnlyBudget, quality: LmQuality, reference: LmQuality) -> bool:
    if budget.metric == "top1_kept":
        return quality.top1_agreement >= (budget.min or 0.0) * reference.top1_agreement
    return quality.kl - reference.kl <= (budget.max or 0.0)


class MixScorer:
    """Quantizes mixes of ``src`` and scores them on the teacher's answers, one scratch model at a time."""

    def __init__(self, src: Path, step: WeightOnly, data: QuantizeData, folder: Path):
        self.src, self.step, self.data = src, step, data
        self.base = prepared(src, step)
        budget = step.budget
        assert budget is not None
        head = set(lm_head_nodes(self.base.graph, weight_matmuls(self.base.graph)))
        self.groups = [g for g in node_groups(self.base, ["MatMul"], budget.group_by)
                       if step.lm_head == "quantize" or not set(g.nodes) & head]
        self.nodes = {g.label: frozenset(g.nodes) for g in self.groups}
        self.every = frozenset().union(*self.nodes.values())
        self.scratch = folder / "mix" / ONNX_NAME
        self.scratch.parent.mkdir(parents=True, exist_ok=True)
        for name in ("genai_config.json",):  # a fused graph's cache shape is read from it
            if (src.parent / name).is_file():
                shutil.copy2(src.parent / name, self.scratch.parent / name)

    def score(self, path: Path) -> LmQuality:
        from edgedistill.lm.decoders import OrtDecoder
        from edgedistill.lm.metrics import teacher_forcing
        from edgedistill.lm.onnx_model import DecoderAsCausalLM

        found = teacher_forcing(DecoderAsCausalLM(OrtDecoder(path, self.data.threads), set()), self.data.targets)
        return LmQuality(found["top1_agreement"], found["kl"])

    def write(self, raised: frozenset[str], dest: Path) -> None:
        proto = onnx.ModelProto()
        proto.CopyFrom(self.base)
        assert self.step.budget is not None
        save_quantized(quantize_proto(proto, self.step, self.data, self.src, raised, self.step.budget.keep),
                       self.src, dest)

    def mix(self, raised_groups: list[str], raised: frozenset[str] | None = None) -> WeightMix:
        nodes = frozenset().union(*(self.nodes[g] for g in raised_groups)) if raised is None else raised
        self.write(nodes, self.scratch)
        quality = self.score(self.scratch)
        log.info("weight-only budget: %s raised → %s", ", ".join(raised_groups) or "none", quality)
        return WeightMix(raised_groups, quality, model_bytes(self.scratch) / MB, len(self.every - nodes))


def sensitivity(scorer: MixScorer, baseline: LmQuality) -> list[GroupKl]:
    """Each group alone at ``bits`` (the rest at ``keep``), most KL added first."""
    rows = []
    with progress_bar("weight-only sensitivity", len(scorer.groups)) as advance:
        for group in scorer.groups:
            q = scorer.mix([], raised=scorer.every - scorer.nodes[group.label]).quality
            rows.append(GroupKl(group.label, len(group.nodes), round(q.top1_agreement, 6), round(q.kl, 6),
                                round(q.kl - baseline.kl, 6)))
            advance(1)
    return sorted(rows, key=lambda r: -r.drop)


def write_sensitivity(rows: list[GroupKl], bits: int, keep: str, out: Path) -> None:
    """``sensitivity.json``, ``.md`` and ``.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "sensitivity.json", json.dumps([asdict(r) for r in rows], indent=1).encode())
    lines = ["| rank | group | nodes | top-1 agreement | KL | KL added |", "|---|---|---|---|---|---|"]
    lines += [f"| {i} | {r.label} | {r.nodes} | {r.top1_agreement:.4f} | {r.kl:.4f} | {r.drop:+.4f} |"
              for i, r in enumerate(rows, 1)]
    atomic_write_bytes(out / "sensitivity.md", ("\n".join(lines) + "\n").encode())
    plot(rows, out / "sensitivity.png", f"KL to the teacher added with only this group at INT{bits} (rest {keep})")


def search(src: Path, dest: Path, step: WeightOnly, data: QuantizeData | None, folder: Path, out: Path
           ) -> dict[str, Any]:
    """Quantize ``src`` into ``dest`` with the fewest groups raised that meet ``step.budget``; returns the record
    for the artifact's meta (``budget``: met, raised groups, each step's quality and size; ``sensitivity``).

    Raises:
        InputError: no teacher answers to score on (``data.targets``).
    """
    budget = step.budget
    assert budget is not None
    if data is None or not data.targets:
        raise InputError("a weight-only budget scores on the teacher's answers; quantize a text-generation run's "
                         "export (its distill stage keeps them), or drop quantize.budget")
    scorer = MixScorer(src, step, data, folder)
    reference = scorer.score(src)
    mixes = [scorer.mix([])]
    rows: list[GroupKl] = []
    if not meets(budget, mixes[0].quality, reference):
        baseline = scorer.mix([], raised=scorer.every).quality
        rows = sensitivity(scorer, baseline)
        write_sensitivity(rows, step.bits, budget.keep, out)
        mixes = greedy_mixes([r.label for r in rows], scorer.mix, lambda m: meets(budget, m.quality, reference))
    chosen, met = chosen_mix(mixes, lambda m: meets(budget, m.quality, reference),
                             lambda m: m.quality.top1_agreement, lambda m: m.low_nodes > 0)
    if not met:
        log.warning("weight-only budget %s cannot be met even with every group at %s; keeping the best mix "
                    "(%s raised)", budget.model_dump(), budget.keep, ", ".join(chosen.raised) or "none")
    scorer.write(frozenset().union(*(scorer.nodes[g] for g in chosen.raised)), dest)
    shutil.rmtree(scorer.scratch.parent, ignore_errors=True)
    return {"budget": budget_record(budget, met, chosen, mixes, reference, scorer.groups),
            **({"sensitivity": [r.label for r in rows]} if rows else {})}


def budget_record(budget: WeightOnlyBudget, met: bool, chosen: WeightMix, mixes: list[WeightMix],
                  reference: LmQuality, groups: list[NodeGroup]) -> dict[str, Any]:
    steps = [{"raised": m.raised[-1] if m.raised else None, **m.quality.as_dict(),
              "top1_kept": round(m.quality.top1_agreement / max(reference.top1_agreement, 1e-12), 6),
              "weights_mb": round(m.weights_mb, 3)} for m in mixes]
    return {**budget.model_dump(exclude_none=True), "met": met, "raised": chosen.raised, "groups": len(groups),
            "quality": chosen.quality.as_dict(), "float_quality": reference.as_dict(),
            "weights_mb": round(chosen.weights_mb, 3), "steps": steps}
