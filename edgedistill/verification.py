"""Comparing an artifact's outputs with a reference's, one way for every stage that verifies: the export against
torch, a fused graph against the unfused one, a re-exported student after quantization-aware training.

A report holds a row per output and input shape (``max_abs``, ``max_rel``, ``min_cosine``, ``passed``), the worst
row, the shapes and the verdict; :func:`check` turns a failed report into one VerificationError line naming the
worst output and shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgedistill.errors import VerificationError


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """max_abs, max_rel (max abs diff over the largest |ref|) and the smallest row cosine of (B, D) outputs."""
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    scale = max(float(np.abs(ref).max()), 1e-12)
    dot = (ref * got).sum(axis=-1, dtype=np.float64)
    norms = np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1)
    cosine = dot / np.maximum(norms, 1e-12)
    return {"max_abs": float(diff.max()), "max_rel": float(diff.max() / scale), "min_cosine": float(cosine.min())}


def result_row(output: str, shape: str, ref: np.ndarray, got: np.ndarray, atol: float,
               min_cosine: float) -> dict[str, Any]:
    """One compared output at one input shape, with its verdict."""
    stats = compare(ref, got)
    return {"output": output, "shape": shape, **stats,
            "passed": stats["max_abs"] <= atol and stats["min_cosine"] >= min_cosine}


def shape_key(label: str) -> tuple[int, ...]:
    """``"4x128"`` or ``"4x3x224x224 padded"`` → its sizes, for sorting labels numerically."""
    return tuple(int(p) for p in label.split()[0].split("x") if p.isdigit())


def report(results: list[dict[str, Any]], atol: float, min_cosine: float, reference: str) -> dict[str, Any]:
    """The verification report of ``results`` (rows of :func:`result_row`) against ``reference``."""
    worst = max(results, key=lambda r: (r["max_abs"] / atol, min_cosine - r["min_cosine"]))
    return {
        "reference": reference, "atol": atol, "min_cosine": min_cosine, "results": results,
        "worst": {"output": worst["output"], "shape": worst["shape"],
                  "max_abs": max(r["max_abs"] for r in results), "max_rel": max(r["max_rel"] for r in results),
                  "min_cosine": min(r["min_cosine"] for r in results)},
        "shapes": sorted({r["shape"] for r in results}, key=shape_key),
        "passed": all(r["passed"] for r in results),
    }


def summary(full: dict[str, Any]) -> dict[str, Any]:
    """What the manifest records of a report: the verdict, the worst numbers, the shapes and tolerances."""
    return {k: full[k] for k in ("passed", "worst", "shapes", "atol", "min_cosine", "reference") if k in full}


def check(full: dict[str, Any], subject: str, hint: str | None = None) -> None:
    """Raise VerificationError naming the worst failing output and shape of ``subject``, if any row failed."""
    failed = [r for r in full["results"] if not r["passed"]]
    if not failed:
        return
    r = max(failed, key=lambda r: (r["max_abs"] / full["atol"], full["min_cosine"] - r["min_cosine"]))
    if r["max_abs"] > full["atol"]:
        why = f"max abs diff {r['max_abs']:.1e} > atol {full['atol']:g} (min cosine {r['min_cosine']:.4f})"
    else:
        why = f"min row cosine {r['min_cosine']:.6f} < {full['min_cosine']:g} (max abs diff {r['max_abs']:.1e})"
    raise VerificationError(f"{subject} differs from {full['reference']}: output '{r['output']}' at shape "
                            f"{r['shape']}: {why}" + (f"; {hint}" if hint else ""))
