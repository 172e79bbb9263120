"""The demo's anchors and our artifacts side by side, in one process run, as ratios with spread.

    .venv/bin/python benchmarks/side_by_side.py [RUN_DIR] [--suite demo-cpu] [--label side-by-side] [--out FILE]

Contenders: the teacher in torch (baseline), the teacher through Optimum (ONNX export at O2 and O3,
dynamic INT8 for avx2 and avx512-vnni) where Optimum can run (benchmarks/optimum/optimum_teacher.py), and
our student stages (student in torch, student ONNX, student dynamic INT8). All are loaded first and timed
interleaved per shape, so the speed-ups share one machine state. Prints speed-up vs the teacher, and vs
Optimum's best teacher artifact (a second interleaved pass, same process) when Optimum ran.

RUN_DIR defaults to runs/minilm-cpu (`make demo`). Both passes' bench results are written as results documents:
benchmarks/results/<date>-<label>-<device>.json and, for the second pass, ...-<label>-vs-optimum-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from options import add_out, add_run, add_suite, add_work, area_of, save_results
from suite import load_suite

sys.path.insert(0, str(Path(__file__).parent / "optimum"))
from optimum_teacher import build, optimum_env  # noqa: E402

from edgedistill.artifacts import Artifact  # noqa: E402
from edgedistill.bench import benchmark  # noqa: E402

AREA = area_of(__file__)
STUDENTS = (("student", "hf", "distill/student"), ("student-onnx", "onnx", "export/model.onnx"),
            ("student-dynamic-int8", "onnx", "quantize/dynamic-int8/model.onnx"))


def teacher_of(run_dir: Path) -> Artifact:
    metrics = json.loads((run_dir / "evaluate" / "metrics.json").read_text())
    return Artifact("teacher", "hf", Path(metrics["artifacts"]["teacher"]["path"]))


def optimum_teacher(teacher: Artifact, out: Path) -> list[Artifact]:
    """The teacher through Optimum (O2, O3, dynamic INT8 for avx2 and avx512-vnni); [] where Optimum cannot run."""
    env = optimum_env()
    if env is None:
        print("Optimum is not importable (see benchmarks/optimum/optimum_teacher.py): skipping the Optimum anchors")
        return []
    return [Artifact(f"teacher-optimum-{name}", "onnx", path) for name, path in build(teacher.path, out, env).items()]


def print_comparisons(comparisons: list[dict[str, Any]]) -> None:
    print(f"{'model':28s} {'vs':24s} {'shape':8s} {'speed-up':>9s} {'95% CI':>13s} {'round IQR':>13s}")
    for c in comparisons:
        print(f"{c['contender']:28s} {c['baseline']:24s} {c['shape']:8s} {c['speedup']:8.2f}× "
              f"{c['ci_low']:6.2f}–{c['ci_high']:<6.2f} {c['round_p25']:6.2f}–{c['round_p75']:<6.2f}")


def best_optimum(results: dict[str, Any]) -> str | None:
    rows = [r for r in results["results"] if r["artifact"].startswith("teacher-optimum")]
    return min(rows, key=lambda r: r["p50_ms"])["artifact"] if rows else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run(parser, positional=True)
    add_suite(parser, "demo-cpu")
    add_work(parser, None)
    add_out(parser, AREA, "side-by-side")
    args = parser.parse_args()
    _, cfg = load_suite(args.suite)
    teacher = teacher_of(args.run_dir)
    students = [Artifact(n, k, args.run_dir / p) for n, k, p in STUDENTS]  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        anchors = optimum_teacher(teacher, work / "optimum")
        results = benchmark(cfg, [teacher, *anchors, *students])  # type: ignore[arg-type]
        print(f"threads {results['env']['threads']}, load avg {results['env']['load_avg_1m']}, "
              f"{results['env']['cpu']}")
        print_comparisons(results["comparisons"])
        save_results(args, "side-by-side", results)
        best = best_optimum(results)
        if best:
            second = cfg.model_copy(update={"backends": ["onnxruntime"]})
            anchor = next(a for a in anchors if a.name == best)
            versus = benchmark(second, [anchor, students[-1]])
            print_comparisons(versus["comparisons"])
            out = args.out.with_name(f"{args.out.stem}-vs-optimum{args.out.suffix}") if args.out else None
            save_results(args, "side-by-side", versus, label=f"{args.label}-vs-optimum", out=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
