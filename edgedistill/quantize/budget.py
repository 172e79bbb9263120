"""Accuracy budget: the fastest mix of INT8 and float that keeps the quality the user asked for.

1. quantize every group and score it; if the budget holds, done;
2. rank the groups by sensitivity (:mod:`sensitivity`), then keep the most sensitive in float one
   at a time, scoring each mix, until the budget holds;
3. time the float model and every mix interleaved (ORT CPU, 1×128, medians) so the report shows
   what each float group cost.

If even the last mix misses the budget, the best-scoring mix that still quantizes something is
kept, the record says ``met: false`` and a warning names the budget.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedistill.config import Calibrated, QuantizeBudget
from edgedistill.quantize.common import ONNX_NAME
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.latency import median_latency_ms
from edgedistill.quantize.mixes import chosen_mix, greedy_mixes
from edgedistill.quantize.quality import Quality, Reference
from edgedistill.quantize.sensitivity import analyse, write_report
from edgedistill.quantize.static import CalibratedModel, quantize_nodes

log = logging.getLogger(__name__)


@dataclass
class Mix:
    """One candidate: the groups kept in float (in the order they were added), its file and quality."""

    kept_float: list[str]
    path: Path
    quality: Quality
    quantized_nodes: int


def meets(budget: QuantizeBudget, quality: Quality, float_sts: float | None) -> bool:
    if budget.metric == "fidelity_cosine":
        return quality.fidelity_cosine >= (budget.min or 0.0)
    assert quality.sts_spearman is not None and float_sts is not None  # Reference checked data.sts
    return float_sts - quality.sts_spearman <= (budget.max or 0.0)


def greedy(cal: CalibratedModel, ranking: list[str], reference: Reference, budget: QuantizeBudget, folder: Path,
           excluded: set[str]) -> list[Mix]:
    """Mixes with 0, 1, 2 … of the most sensitive groups in float, stopping at the first that meets the budget."""
    nodes = {g.label: set(g.nodes) for g in cal.groups}

    def make(kept: list[str]) -> Mix:
        quantized = cal.all_nodes - excluded - set().union(*(nodes[label] for label in kept))
        path = quantize_nodes(cal, folder / f"mix{len(kept)}" / ONNX_NAME, quantized)
        mix = Mix(kept, path, reference.score(path), len(quantized))
        log.info("budget: %d groups in float → %s", len(kept), mix.quality)
        return mix

    return greedy_mixes(ranking, make, lambda m: meets(budget, m.quality, reference.sts))


def choose(mixes: list[Mix], budget: QuantizeBudget, float_sts: float | None) -> tuple[Mix, bool]:
    """The first mix meeting the budget, else the best-scoring one that still quantizes something."""
    def value(m: Mix) -> float:
        return m.quality.fidelity_cosine if budget.metric == "fidelity_cosine" else m.quality.sts_spearman or 0.0

    best, met = chosen_mix(mixes, lambda m: meets(budget, m.quality, float_sts), value, lambda m: m.quantized_nodes > 0)
    if not met:
        log.warning("quantize budget %s cannot be met even with every group in float; keeping the best mix "
                    "(%s in float)", budget.model_dump(exclude_none=True), ", ".join(best.kept_float) or "none")
    return best, met


def decision_costs(cal: CalibratedModel, mixes: list[Mix], threads: int | None) -> tuple[float, list[float]]:
    """Median ms at 1×128 of the float model and of each mix, timed interleaved."""
    times = median_latency_ms([cal.prepared, *(m.path for m in mixes)], threads=threads)
    return times[0], times[1:]


def search(cal: CalibratedModel, step: Calibrated, data: QuantizeData | None, folder: Path, out: Path,
           excluded: set[str]) -> tuple[Path, dict[str, Any]]:
    """Run the sensitivity analysis, and the budget search when ``step.budget`` is set.

    Returns:
        The chosen model's path and the record for the artifact's meta (``sensitivity``, ``budget``).
    """
    budget = step.budget
    reference = Reference(cal.model, data, need_sts=budget is not None and budget.metric == "sts_drop")
    rows = analyse(cal, reference, folder, excluded)
    write_report(rows, out)
    record: dict[str, Any] = {"sensitivity": [r.label for r in rows]}
    if budget is None:
        path = quantize_nodes(cal, folder / "int8" / ONNX_NAME, cal.all_nodes - excluded)
        return path, record
    mixes = greedy(cal, [r.label for r in rows], reference, budget, folder, excluded)
    chosen, met = choose(mixes, budget, reference.sts)
    float_ms, mix_ms = decision_costs(cal, mixes, data.threads if data else None)
    record["budget"] = budget_record(budget, met, chosen, mixes, float_ms, mix_ms, reference.sts)
    return chosen.path, record


def budget_record(budget: QuantizeBudget, met: bool, chosen: Mix, mixes: list[Mix], float_ms: float,
                  mix_ms: list[float], float_sts: float | None) -> dict[str, Any]:
    steps = [{"kept_float": m.kept_float[-1] if m.kept_float else None, **m.quality.as_dict(),
              "p50_ms_1x128": round(ms, 3), "cost_ms": round(ms - mix_ms[0], 3)}
             for m, ms in zip(mixes, mix_ms, strict=True)]
    return {**budget.model_dump(exclude_none=True), "met": met, "kept_float": chosen.kept_float,
            "quality": chosen.quality.as_dict(), "float_sts_spearman": float_sts,
            "float_p50_ms_1x128": round(float_ms, 3), "steps": steps}
