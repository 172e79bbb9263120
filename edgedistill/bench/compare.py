"""Compare two results files: per contender and shape, B's latency over A's, and where the machines differ.

Ratios across files come from two runs, so slow drift does not cancel as it does inside one interleaved
run (see the ``comparisons`` of a single results file); the table says so, and lists every fingerprint
field that differs, so a reader can tell a speed-up from a different machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.bench.schema import load_results
from edgedistill.errors import InputError

METRICS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "throughput_per_s", "peak_rss_mb", "file_mb")
ENV_KEYS = ("cpu", "cores", "isa", "gpus", "driver", "cuda", "jetson", "threads", "inter_op_threads", "thread_env",
            "versions", "git_commit")


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return row.get("contender") or row["artifact"], row["backend"], row["shape"]


def env_differences(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{key, a, b}]`` for fingerprint fields that differ (library versions compared one by one)."""
    diffs = []
    for key in ENV_KEYS:
        if key == "versions":
            va, vb = a.get(key) or {}, b.get(key) or {}
            diffs += [{"key": f"versions.{p}", "a": va.get(p), "b": vb.get(p)}
                      for p in sorted(set(va) | set(vb)) if va.get(p) != vb.get(p)]
        elif a.get(key) != b.get(key):
            diffs.append({"key": key, "a": a.get(key), "b": b.get(key)})
    return diffs


def compare(a_json: Path | str, b_json: Path | str, metric: str = "p50_ms") -> dict[str, Any]:
    """The ratio table of two results files.

    Args:
        a_json, b_json: results files (or run directories holding ``bench/results.json``); A is the reference.
        metric: a row field to compare (default the median latency).
    Returns:
        ``{"metric", "a", "b", "rows": [{contender, backend, shape, a, b, ratio (b/a), speedup (a/b, for
        latencies), noise (larger CV of the two)}], "only_a": [...], "only_b": [...], "env_diff": [...]}``.
    Raises:
        InputError: a file is missing or not a results file, an unknown metric, or nothing in common.
    """
    if metric not in METRICS:
        raise InputError(f"unknown metric '{metric}'; expected one of: {', '.join(METRICS)}")
    docs = [load_results(Path(p)) for p in (a_json, b_json)]
    rows_a, rows_b = ({row_key(r): r for r in d["results"]} for d in docs)
    common = [k for k in rows_a if k in rows_b]
    if not common:
        raise InputError(f"{a_json} and {b_json} share no (model, backend, shape); nothing to compare")
    rows = [table_row(k, rows_a[k], rows_b[k], metric) for k in common]
    return {"metric": metric, "a": str(a_json), "b": str(b_json), "rows": rows,
            "only_a": [list(k) for k in rows_a if k not in rows_b],
            "only_b": [list(k) for k in rows_b if k not in rows_a],
            "env_diff": env_differences(docs[0].get("env", {}), docs[1].get("env", {}))}


def table_row(key: tuple[str, str, str], a: dict[str, Any], b: dict[str, Any], metric: str) -> dict[str, Any]:
    va, vb = a.get(metric), b.get(metric)
    ratio = vb / va if va and vb is not None else None
    lower_is_better = metric.endswith("_ms") or metric.endswith("_mb")
    speedup = (1 / ratio if ratio else None) if lower_is_better else ratio
    noise = max(a.get("cv") or 0.0, b.get("cv") or 0.0)
    return {"contender": key[0], "backend": key[1], "shape": key[2], "a": va, "b": vb, "ratio": ratio,
            "speedup": speedup, "noise": noise}


def format_compare(table: dict[str, Any]) -> str:
    """The table as Markdown, with the caveats (different runs; differing environment) underneath."""
    m = table["metric"]
    lines = [f"| model | backend | shape | A {m} | B {m} | B/A | A/B | noise (max CV) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        cells = [r["contender"], r["backend"], r["shape"], num(r["a"]), num(r["b"]), num(r["ratio"], "×"),
                 num(r["speedup"], "×"), f"{r['noise']:.1%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"A = {table['a']}, B = {table['b']}. These are two separate runs: drift between them does not "
                  "cancel; for ratios with a spread, bench both models in one run (interleaved)."]
    if table["env_diff"]:
        lines.append("Environment differs: " + "; ".join(f"{d['key']}: {d['a']} → {d['b']}" for d in table["env_diff"]))
    for side in ("only_a", "only_b"):
        if table[side]:
            lines.append(f"Only in {side[-1].upper()}: " + ", ".join("/".join(k) for k in table[side]))
    return "\n".join(lines) + "\n"


def num(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.3g}{suffix}" if abs(value) < 1000 else f"{value:.0f}{suffix}"
