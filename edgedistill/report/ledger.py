"""Join evaluation metrics and benchmark results into one row per artifact, with ratios to the teacher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgedistill.artifacts import read_json
from edgedistill.errors import InputError

SCHEMA = 1
TEACHER = "teacher"
METRICS = Path("evaluate") / "metrics.json"
RESULTS = Path("bench") / "results.json"
IDENTITY = ("kind", "path", "backend", "params", "file_mb")  # a metrics entry's keys that are not quality
LATENCY_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "throughput_per_s", "batch", "seq", "cv", "first_ms",
                "cold_ms", "peak_rss_mb")


def read_stage_json(path: Path, stage: str) -> dict[str, Any]:
    """Read a stage's JSON output.

    Raises:
        InputError: missing or unreadable, saying which stage to run.
    """
    if not path.is_file():
        raise InputError(f"{path} not found; run the {stage} stage first")
    try:
        data = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not readable JSON ({err}); re-run the {stage} stage") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} does not hold a JSON object; re-run the {stage} stage")
    return data


def load_inputs(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, bench results) of ``run_dir``; a stage that has not run gives an empty stand-in.

    Raises:
        InputError: neither stage has run, or a results file is unreadable or malformed.
    """
    metrics_path, results_path = run_dir / METRICS, run_dir / RESULTS
    if not metrics_path.is_file() and not results_path.is_file():
        raise InputError(f"neither {metrics_path} nor {results_path} exists; run the evaluate and/or bench stage first")
    metrics = read_stage_json(metrics_path, "evaluate") if metrics_path.is_file() else {"artifacts": {}, "order": []}
    bench = read_stage_json(results_path, "bench") if results_path.is_file() else {"results": []}
    if not isinstance(metrics.get("artifacts"), dict):
        raise InputError(f"{metrics_path} has no 'artifacts' mapping; re-run the evaluate stage")
    if not isinstance(bench.get("results"), list):
        raise InputError(f"{results_path} has no 'results' list; re-run the bench stage")
    metrics.setdefault("missing", not metrics_path.is_file())
    bench.setdefault("missing", not results_path.is_file())
    return metrics, bench


def artifact_order(metrics: dict[str, Any], bench_rows: list[dict[str, Any]]) -> list[str]:
    """Names in ``metrics["order"]``, then any other evaluated or benched artifacts in first-seen order."""
    names = list(metrics.get("order") or [])
    for name in [*metrics["artifacts"], *(r["artifact"] for r in bench_rows)]:
        if name not in names:
            names.append(name)
    return names


def shapes_of(bench_rows: list[dict[str, Any]]) -> list[str]:
    shapes: list[str] = []
    for r in bench_rows:
        if r["shape"] not in shapes:
            shapes.append(r["shape"])
    return shapes


def latency_of(name: str, backend: str | None, bench_rows: list[dict[str, Any]]) -> tuple[str | None, dict[str, Any]]:
    """(backend, {shape: {p50_ms, p99_ms, throughput_per_s}}) for one artifact, preferring its evaluated backend."""
    rows = [r for r in bench_rows if r["artifact"] == name]
    if backend is not None and any(r["backend"] == backend for r in rows):
        rows = [r for r in rows if r["backend"] == backend]
    elif rows:
        backend = rows[0]["backend"]
        rows = [r for r in rows if r["backend"] == backend]
    return backend, {r["shape"]: {**{k: r.get(k) for k in LATENCY_KEYS}, "mj_per_inference": mj_of(r)} for r in rows}


def mj_of(row: dict[str, Any]) -> float | None:
    """Energy per inference (net of idle) where the bench measured power."""
    power = row.get("power")
    return power.get("mj_per_inference") if isinstance(power, dict) else None


def speedup_spread(name: str, teacher: str | None, comparisons: list[dict[str, Any]]) -> dict[str, list[float]]:
    """{shape: [ci_low, ci_high]} of the teacher-vs-``name`` interleaved speed-up, where the bench measured it."""
    return {c["shape"]: [c["ci_low"], c["ci_high"]] for c in comparisons
            if c.get("baseline") == teacher and c.get("contender") == name}


def base_row(name: str, metrics: dict[str, Any], bench_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One artifact's row without the ratios: identity, size, quality and latency per shape."""
    m = metrics["artifacts"].get(name, {})
    backend, latency = latency_of(name, m.get("backend"), bench_rows)
    bench_mb = next((r.get("file_mb") for r in bench_rows if r["artifact"] == name), None)
    quality = {k: v for k, v in m.items() if k not in IDENTITY}
    return {
        "name": name, "kind": m.get("kind"), "backend": backend, "params": m.get("params"),
        "file_mb": m["file_mb"] if m.get("file_mb") is not None else bench_mb, **quality, "latency": latency,
    }


def ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def add_ratios(row: dict[str, Any], teacher: dict[str, Any] | None, shapes: list[str]) -> dict[str, Any]:
    """Add ``speedup_p50`` {shape: teacher p50 / row p50} and ``size_ratio`` = row file_mb / teacher file_mb."""
    def p50(r: dict[str, Any] | None, shape: str) -> float | None:
        return r["latency"].get(shape, {}).get("p50_ms") if r else None

    row["speedup_p50"] = {s: ratio(p50(teacher, s), p50(row, s)) for s in shapes}
    row["size_ratio"] = ratio(row["file_mb"], teacher["file_mb"] if teacher else None)
    return row


def build_report(metrics: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    """Join metrics and bench results.

    Returns:
        ``{"schema": 1, "teacher": "teacher" or None, "shapes": [...], "sts_sets": [...],
        "missing_stages": ["evaluate" | "bench" not run], "env": {...}, "comparisons": [...] (interleaved,
        from the bench), "power": {...} | None, "bench_schema": n,
        "rows": [{name, kind, backend, params, file_mb, fidelity_cosine, sts_<set>_spearman...,
        latency: {shape: {p50_ms, p90_ms, p95_ms, p99_ms, throughput_per_s, batch, seq, cv, first_ms, cold_ms,
        peak_rss_mb, mj_per_inference}}, speedup_p50: {shape: x}, speedup_ci: {shape: [low, high]}, size_ratio}]}``;
        a value that was not measured is None.
    """
    bench_rows = bench["results"]
    shapes = shapes_of(bench_rows)
    rows = [base_row(n, metrics, bench_rows) for n in artifact_order(metrics, bench_rows)]
    teacher = next((r for r in rows if r["name"] == TEACHER), None)
    rows = [add_ratios(r, teacher, shapes) for r in rows]
    comparisons = bench.get("comparisons") or []
    for r in rows:
        r["speedup_ci"] = speedup_spread(r["name"], teacher["name"] if teacher else None, comparisons)
    sts_sets = sorted({k[4:-9] for r in rows for k in r if k.startswith("sts_") and k.endswith("_spearman")})
    missing = [stage for stage, data in (("evaluate", metrics), ("bench", bench)) if data.get("missing")]
    return {"schema": SCHEMA, "teacher": teacher["name"] if teacher else None, "shapes": shapes,
            "sts_sets": sts_sets, "missing_stages": missing, "env": bench.get("env", {}), "rows": rows,
            "comparisons": comparisons, "power": bench.get("power"), "bench_schema": bench.get("schema")}
