"""Time every artifact on every backend that can run it, on the same inputs and thread count.

With one contender (artifact × backend) each shape is timed on its own. With several, all are loaded
first and timed **interleaved** per shape — rounds of A B, then B A, … — so slow drift of the machine
falls on every contender alike; the results then carry ``comparisons``: the first contender's median
over each other's (the speed-up) with a 95% bootstrap interval and the per-round IQR.
Load time and the first (cold) inference are timed apart from the steady state. Output: the results document
(schema :data:`SCHEMA`, JSON Schema in ``results.schema.json``), which the bench stage writes.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgedistill.artifacts import Artifact
from edgedistill.bench.energy_pass import energy_pass
from edgedistill.bench.env import fingerprint
from edgedistill.bench.inputs import check_shapes, make_feeds, shared_spec
from edgedistill.bench.measure import Contender, measure_interleaved, measure_sequential
from edgedistill.bench.memory import current_rss_mb, reset_peak_rss
from edgedistill.bench.probe import Probe
from edgedistill.bench.settings import BenchSettings, settings_from
from edgedistill.bench.threads import pin_threads
from edgedistill.config import BenchConfig, Shape
from edgedistill.engines.base import BACKEND_FOR_KIND, Session, kind_of, open_session
from edgedistill.engines.size import model_file_mb
from edgedistill.errors import InputError
from edgedistill.tasks.inputs import InputSpec

SCHEMA = 2


def bench_session(session: Session, shapes: list[Shape], warmup: int, iterations: int, min_duration_s: float, *,
                  spec: InputSpec, seed: int = 0, on_shape: Callable[[], None] | None = None,
                  settings: BenchSettings | None = None) -> list[dict[str, Any]]:
    """Benchmark ``session`` alone at each shape on the inputs ``make_feeds(shape, spec, seed)``.

    Returns:
        One row per shape: shape, batch, seq, p50/p90/p95/p99/mean/std/min/max ``_ms``, cv,
        throughput_per_s (samples/s = batch / mean latency), iterations, warmup_calls, first_ms,
        timer, peak_rss_mb, gpu_peak_mb, mode (and h2d_ms/d2h_ms on a GPU).
    Raises:
        InputError: a shape the model cannot take.
    """
    s = (settings or settings_from()).model_copy(update={"warmup": warmup, "iterations": iterations,
                                                          "min_duration_s": min_duration_s, "seed": seed})
    rows = []
    for shape in shapes:
        rows.append(measure_sequential(session, shape, make_feeds(shape, spec, seed), s))
        if on_shape is not None:
            on_shape()
    return rows


def plan(cfg: BenchConfig, artifacts: list[Artifact]) -> list[tuple[Artifact, str]]:
    """(artifact, backend) pairs to run: each backend in ``cfg.backends`` that can run the artifact's kind.

    Raises:
        InputError: nothing to run.
    """
    pairs: list[tuple[Artifact, str]] = [
        (a, b) for a in artifacts for b in cfg.backends if BACKEND_FOR_KIND.get(kind_of(a)) == b
    ]
    if not pairs:
        kinds = ", ".join(sorted({a.kind for a in artifacts})) or "none"
        raise InputError(f"no artifact can run on backends {list(cfg.backends)} (artifact kinds: {kinds}); "
                         "add 'torch' for hf models or 'onnxruntime' for onnx models to bench.backends")
    return pairs


def open_contender(artifact: Artifact, backend: str, settings: BenchSettings, name: str) -> Contender:
    """Load (timed, with the resident memory it added) and record the model's file size."""
    gc.collect()
    rss0 = current_rss_mb()
    t0 = time.perf_counter()
    session = open_session(artifact, backend, settings.threads, settings.session_options())
    load_s = time.perf_counter() - t0
    contender = Contender(name, artifact.name, backend, session, load_s, current_rss_mb() - rss0,
                          model_file_mb(artifact))
    contender.replicas = [open_session(artifact, backend, settings.threads, settings.session_options())
                          for _ in range(settings.sessions - 1)]
    return contender


def cold_call(contender: Contender, shape: Shape, spec: InputSpec, seed: int) -> None:
    """Time the very first inference after load (lazy initialisation, kernel selection, page faults)."""
    contender.cold_ms = Probe(contender.session, make_feeds(shape, spec, seed))() * 1000.0


def contender_fields(c: Contender) -> dict[str, Any]:
    return {"artifact": c.artifact, "backend": c.backend, "contender": c.name, "load_s": c.load_s,
            "load_rss_mb": c.load_rss_mb, "cold_ms": c.cold_ms, "file_mb": c.file_mb,
            "threads": getattr(c.session, "threads", None), "device": getattr(c.session, "device", "cpu"),
            "providers": getattr(c.session, "providers", None)}


def warn_noisy(rows: list[dict[str, Any]], console: Console, limit: float) -> None:
    for row in rows:
        if row["cv"] > limit:
            console.print(f"[yellow]warning:[/] {row['contender']} at {row['shape']}: latency varies "
                          f"by {row['cv']:.0%} of the mean; close other programs or raise bench.iterations")


def names_for(pairs: list[tuple[Artifact, str]]) -> list[str]:
    """Contender names: the artifact's, plus ``@backend`` when one artifact runs on several backends."""
    count: dict[str, int] = {}
    for a, _ in pairs:
        count[a.name] = count.get(a.name, 0) + 1
    return [a.name if count[a.name] == 1 else f"{a.name}@{b}" for a, b in pairs]


def measure_all(contenders: list[Contender], shapes: list[Shape], settings: BenchSettings, spec: InputSpec,
                advance: Callable[[], None]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows and comparisons for every shape: interleaved when there are several contenders and
    ``settings.compare`` is ``interleaved``, else one contender after the other."""
    rows: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    together = len(contenders) > 1 and settings.compare == "interleaved"
    for shape in shapes:
        feeds = make_feeds(shape, spec, settings.seed)
        if together:
            shape_rows, comps = measure_interleaved(contenders, shape, feeds, settings)
            comparisons += comps
        else:
            shape_rows = [measure_sequential(c.session, shape, feeds, settings, c.replicas) for c in contenders]
        rows += [{**contender_fields(c), **r} for c, r in zip(contenders, shape_rows, strict=True)]
        advance()
    order = {c.name: i for i, c in enumerate(contenders)}
    rows.sort(key=lambda r: order[r["contender"]])  # grouped by contender, shapes in config order
    return rows, comparisons


def results_doc(settings: BenchSettings, rows: list[dict[str, Any]], comparisons: list[dict[str, Any]],
                energy: dict[str, Any] | None) -> dict[str, Any]:
    env = {**fingerprint(settings.threads, settings.inter_op_threads), "peak_rss_resettable": reset_peak_rss()}
    return {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "env": env, "settings": settings.as_dict(), "results": rows, "comparisons": comparisons,
            "power": energy}


def benchmark(cfg: BenchConfig, artifacts: list[Artifact]) -> dict[str, Any]:
    """Benchmark every artifact on every fitting backend in ``cfg.backends``.

    Returns:
        The results document (see ``results.schema.json``): ``{"schema": 2, "created", "env",
        "settings", "results": [row, ...], "comparisons": [...], "power": {...} | None}``; each row is a
        :func:`bench_session` row plus artifact, backend, contender, load_s, load_rss_mb, cold_ms, file_mb.
    Raises:
        InputError: no artifact fits the backends, a tokenizer is missing, or a shape does not fit a model.
        MissingDependencyError: a backend, execution provider or tegrastats (power on) is missing.
    """
    settings = settings_from(cfg)
    pin_threads(settings.threads, settings.inter_op_threads)
    pairs = plan(cfg, artifacts)
    spec = shared_spec([a for a, _ in pairs])
    shapes = list(cfg.shapes)
    check_shapes(spec, shapes)
    console = Console(stderr=True, soft_wrap=True)  # a warning is one line, also in a log
    contenders = [open_contender(a, b, settings, n) for (a, b), n in zip(pairs, names_for(pairs), strict=True)]
    for c in contenders:
        cold_call(c, shapes[0], spec, settings.seed)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"bench {len(contenders)} model(s)", total=len(shapes))
        rows, comparisons = measure_all(contenders, shapes, settings, spec, lambda: progress.advance(task))
    energy = energy_pass(contenders, shapes, settings, spec, rows)
    warn_noisy(rows, console, settings.cv_warn)
    results = results_doc(settings, rows, comparisons, energy)
    del contenders
    gc.collect()
    return results
