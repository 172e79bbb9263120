"""The search's result: each candidate's best-known quality against its latency, the Pareto front, the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

STAGES = ("untrained", "proxy", "final")  # how far a candidate got, i.e. what its quality was measured after


def known_quality(records: dict[str, Any], name: str) -> tuple[float, str]:
    """A candidate's quality as far as it got: the final artifact's, else its architecture's last proxy rung's,
    else its untrained quality; and which of those it is."""
    cand = records["candidates"][name]
    if "final" in cand:
        return cand["final"]["quality"], "final"
    rungs = records["architectures"][cand["architecture"]]["rungs"]
    if rungs:
        return rungs[max(rungs, key=int)]["quality"], "proxy"
    return cand["untrained"]["quality"], "untrained"


def points(records: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per candidate with a latency: name, latency_ms, quality, stage, status."""
    rows = []
    for name, cand in records["candidates"].items():
        if "latency_ms" not in cand:
            continue
        quality, stage = known_quality(records, name)
        rows.append({"name": name, "latency_ms": cand["latency_ms"], "quality": quality, "stage": stage,
                     "status": cand["status"]})
    return sorted(rows, key=lambda r: r["latency_ms"])


def pareto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows no other row beats on both latency and quality, fastest first."""
    front: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r["latency_ms"], -r["quality"])):
        if not front or row["quality"] > front[-1]["quality"]:
            front.append(row)
    return front


def plot(rows: list[dict[str, Any]], floor: float, latency_label: str, path: Path) -> None:
    """Quality against latency (log), marker by how far each candidate got, the floor dashed, the chosen starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for stage, marker in zip(STAGES, ("o", "s", "D")):
        mine = [r for r in rows if r["stage"] == stage]
        ax.scatter([r["latency_ms"] for r in mine], [r["quality"] for r in mine], marker=marker, alpha=0.8,
                   label={"untrained": "untrained", "proxy": "after a proxy rung",
                          "final": "fully distilled, shipped"}[stage])
    for i, r in enumerate(sorted(rows, key=lambda r: r["latency_ms"])):  # neighbours' names above and below
        ax.annotate(r["name"], (r["latency_ms"], r["quality"]), textcoords="offset points",
                    xytext=(4, 3 if i % 2 == 0 else -10), fontsize=7)
    front = pareto([r for r in rows if r["stage"] == "final"])
    ax.plot([r["latency_ms"] for r in front], [r["quality"] for r in front], color="tab:green", alpha=0.6)
    chosen = [r for r in rows if r["status"] == "chosen"]
    if chosen:
        ax.scatter([chosen[0]["latency_ms"]], [chosen[0]["quality"]], marker="*", s=260, color="gold",
                   edgecolors="black", zorder=5, label=f"chosen: {chosen[0]['name']}")
    ax.axhline(floor, color="gray", linestyle="--", linewidth=1, label=f"floor {floor:g} of the teacher")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 5, 6, 8 ms rather than 5x10^0
    ax.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel(f"latency, ms (log)\n{latency_label}", fontsize=8)
    ax.set_ylabel("quality / teacher's")
    ax.legend(loc="best", fontsize=7, framealpha=0.6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
