"""The report's figures as PNG bytes: latency percentiles per model, latency vs batch, quality vs latency.

Each function takes the report dict and returns PNG bytes, so the same figure goes into report.png
and, base64-encoded, into the self-contained report.html.
"""

from __future__ import annotations

import io
from typing import Any

from edgedistill.report.quality import headline, quality_columns

PERCENTILE_KEYS = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"))


def new_figure(width: float = 6.4, height: float = 4.4) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def png(fig: Any) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def percentiles_png(report: dict[str, Any]) -> bytes:
    """Grouped bars: p50/p90/p99 at the first shape for every benched model (label: name, backend)."""
    fig = new_figure()
    ax = fig.add_subplot()
    shape = report["shapes"][0] if report["shapes"] else None
    rows = [r for r in report["rows"] if shape and r["latency"].get(shape, {}).get("p50_ms") is not None]
    width = 0.8 / len(PERCENTILE_KEYS)
    for j, (key, label) in enumerate(PERCENTILE_KEYS):
        ax.bar([i + j * width for i in range(len(rows))], [r["latency"][shape].get(key) or 0 for r in rows],
               width=width, label=label)
    ax.set_xticks([i + width for i in range(len(rows))],
                  [f"{r['name']}\n({r['backend']})" for r in rows], fontsize=7)
    if not rows:
        empty(ax, "no latency measured")
    ax.set_ylabel(f"latency at {shape or '?'} (ms)")
    ax.set_title("latency percentiles per model and backend")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def batch_series(report: dict[str, Any]) -> tuple[int | None, dict[str, list[tuple[int, float]]]]:
    """(sequence length, {model: [(batch, p50), ...]}) at the sequence length with the most batch sizes."""
    seqs: dict[int, set[int]] = {}
    for r in report["rows"]:
        for lat in r["latency"].values():
            if lat.get("seq") is not None:
                seqs.setdefault(lat["seq"], set()).add(lat["batch"])
    if not seqs:
        return None, {}
    seq = max(seqs, key=lambda s: len(seqs[s]))
    series = {f"{r['name']} ({r['backend']})": sorted((lat["batch"], lat["p50_ms"]) for lat in r["latency"].values()
                                                      if lat.get("seq") == seq and lat.get("p50_ms") is not None)
              for r in report["rows"]}
    return seq, {k: v for k, v in series.items() if v}


def batch_png(report: dict[str, Any]) -> bytes:
    """p50 latency against batch size, one line per model, at one sequence length."""
    fig = new_figure()
    ax = fig.add_subplot()
    seq, series = batch_series(report)
    for name, points in series.items():
        ax.plot([b for b, _ in points], [p for _, p in points], marker="o", label=name)
    if not series:
        empty(ax, "no latency measured")
    ax.set_xlabel(f"batch size (sequence {seq})")
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title("latency vs batch")
    if series:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return png(fig)


def quality_points(report: dict[str, Any]) -> tuple[str, list[tuple[str, float, float]]]:
    """(y-axis label, [(name, p50 ms at the first shape, quality)]) for rows with both numbers."""
    column = headline(quality_columns(report["rows"]))
    if column is None:
        return "quality", []
    key, label = column.key, column.label
    shape = report["shapes"][0] if report["shapes"] else None
    points = []
    for row in report["rows"]:
        p50 = row["latency"].get(shape, {}).get("p50_ms") if shape else None
        if p50 is not None and row.get(key) is not None:
            points.append((row["name"], p50, row[key]))
    return label, points


def pareto_front(points: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Points no other point beats on both latency (lower) and quality (higher), by latency."""
    front, best = [], float("-inf")
    for name, x, y in sorted(points, key=lambda p: (p[1], -p[2])):
        if y > best:
            front.append((name, x, y))
            best = y
    return front


def pareto_png(report: dict[str, Any]) -> bytes:
    """Quality vs p50 at the first shape, one labelled point per model; the Pareto front joined by a line."""
    fig = new_figure()
    ax = fig.add_subplot()
    label, points = quality_points(report)
    for name, x, y in points:
        ax.scatter([x], [y])
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    front = pareto_front(points)
    if len(front) > 1:
        ax.plot([x for _, x, _ in front], [y for _, _, y in front], "--", color="grey", label="Pareto front")
        ax.legend(fontsize=8)
    if not points:
        empty(ax, "no artifact has both latency and quality")
    shape = report["shapes"][0] if report["shapes"] else "?"
    ax.set_xlabel(f"p50 latency at {shape} (ms)")
    ax.set_ylabel(label)
    ax.set_title("quality vs latency")
    ax.grid(alpha=0.3)
    return png(fig)


FIGURES = {"percentiles": ("Latency percentiles per backend", percentiles_png),
           "batch": ("Latency vs batch", batch_png),
           "pareto": ("Quality vs latency (Pareto front)", pareto_png)}
