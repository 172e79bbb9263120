"""Sensitivity analysis: quantize one node group at a time and measure how far the output moves.

Each probe quantizes a single group (all else float) from the shared calibration and scores it
against the float model; the drop (1 − fidelity cosine) ranks the groups. The ranking is what the
budget search keeps in float first. Written as ``sensitivity.json``, ``sensitivity.md`` and a plot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgedistill.artifacts import atomic_write_bytes
from edgedistill.progress import progress_bar
from edgedistill.quantize.common import ONNX_NAME
from edgedistill.quantize.quality import Reference
from edgedistill.quantize.static import CalibratedModel, quantize_nodes


@dataclass(frozen=True)
class GroupSensitivity:
    """One group quantized alone: its fidelity to the float model and the drop from 1."""

    label: str
    nodes: int
    fidelity_cosine: float
    drop: float


def analyse(cal: CalibratedModel, reference: Reference, folder: Path, excluded: set[str]) -> list[GroupSensitivity]:
    """Every group's sensitivity, most sensitive first (groups fully excluded by the user are skipped)."""
    rows = []
    probes = [g for g in cal.groups if set(g.nodes) - excluded]
    with progress_bar("sensitivity", len(probes)) as advance:
        for i, group in enumerate(probes):
            path = quantize_nodes(cal, folder / f"probe{i}" / ONNX_NAME, set(group.nodes) - excluded)
            fidelity = reference.score(path).fidelity_cosine
            rows.append(GroupSensitivity(group.label, len(group.nodes), round(fidelity, 6), round(1 - fidelity, 6)))
            path.unlink()
            advance(1)
    return sorted(rows, key=lambda r: -r.drop)


def markdown(rows: list[GroupSensitivity]) -> str:
    lines = ["| rank | group | nodes | fidelity cosine | drop |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {r.label} | {r.nodes} | {r.fidelity_cosine:.6f} | {r.drop:.2e} |"
              for i, r in enumerate(rows, 1)]
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[GroupSensitivity | Any], path: Path,
         xlabel: str = "1 − fidelity cosine with only this group in INT8") -> None:
    """Horizontal bars of each row's ``drop``, most sensitive on top (log scale: drops span decades)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    ax.barh([r.label for r in rows][::-1], [max(r.drop, 1e-9) for r in rows][::-1], color="tab:red")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title("quantization sensitivity")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[GroupSensitivity], out: Path) -> None:
    """``sensitivity.json``, ``sensitivity.md`` and ``sensitivity.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "sensitivity.json", json.dumps([asdict(r) for r in rows], indent=1).encode())
    atomic_write_bytes(out / "sensitivity.md", markdown(rows).encode())
    plot(rows, out / "sensitivity.png")
