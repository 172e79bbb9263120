"""The student search against its targets: quality kept, speed against Optimum's INT8 teacher, and its cost.

Runs (or reuses) ``make demo-search`` — ``edgedistill run pkg:edgedistill/examples/minilm-search-cpu.yaml`` — and
then, in this one process:
- STS-B test Spearman of the chosen student's shipped artifact and of the teacher (target: ≥ 97% of the teacher, i.e.
  ≥ 79.6), and on the test pairs none of whose sentences occurs in the training texts ("unseen", ≥ 97%);
- the chosen artifact and Optimum's INT8 artifacts of the teacher (avx2 and avx512-vnni dynamic, where Optimum runs)
  timed interleaved at 1×128 and 32×128 (target: ≥ 2.5× Optimum's best at both);
- the search's wall time against distilling the chosen student alone in a fresh run directory, teacher labelling
  included as the search's was (target: ≤ 2×), where the search's time went (its phases), and whether the lone
  run's student is bit for bit the search's finalist (it should be: the finalist is its rungs continued).

Run: .venv/bin/python benchmarks/distill/search_targets.py [--run runs/minilm-search-cpu] [--work runs/search-targets]
         [--label search-targets] [--out FILE]
Writes benchmarks/distill/results/<date>-<label>-<device>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "optimum"))

from frontier import time_all  # noqa: E402
from optimum_teacher import build, optimum_env  # noqa: E402
from options import RUNS, add_out, add_run, add_work, area_of, save_results, shown  # noqa: E402
from sts_targets import UNSEEN_SHARE, scores, unseen_pairs  # noqa: E402

from edgedistill import api  # noqa: E402
from edgedistill.artifacts import Artifact, read_json, read_manifest  # noqa: E402
from edgedistill.config import FromTeacher, Shape, load_config  # noqa: E402
from edgedistill.data.corpus import load_train_texts  # noqa: E402
from edgedistill.data.stsb import read_sts  # noqa: E402
from edgedistill.search.configs import candidate_config  # noqa: E402

AREA = area_of(__file__)
EXAMPLE = "pkg:edgedistill/examples/minilm-search-cpu.yaml"
SHAPES = (Shape(batch=1, seq=128), Shape(batch=32, seq=128))
KEEP, SPEEDUP, COST = 0.97, 2.5, 2.0


def distil_alone(cfg: Any, chosen: dict[str, Any], work: Path) -> float:
    """Wall seconds of the distill stage for the chosen student alone, in a fresh run directory (labels included)."""
    alone = candidate_config(cfg, FromTeacher.model_validate(chosen["student"]["from_teacher"]),
                             [chosen["precision"]])
    api.distill(alone, work / "alone")
    return float(read_manifest(work / "alone")["stages"]["distill"]["wall_s"])


def same_weights(a: Path, b: Path) -> bool:
    """Whether two students' safetensors hold identical tensors (the search's finalist against the lone run)."""
    import torch
    from safetensors.torch import load_file

    wa, wb = (load_file(str(next(p.glob("*.safetensors")))) for p in (a, b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def speeds(ours: Path, work: Path, teacher: Path, rounds: int, per_round: int) -> dict[str, Any]:
    """p50 per shape of our artifact and Optimum's INT8 teacher artifacts, interleaved; ratios to Optimum's best."""
    files = {"ours": ours}
    env = optimum_env()
    if env is not None:
        made = build(teacher, work / "optimum", env)
        files |= {f"optimum-{n}": made[n] for n in ("int8-avx2", "int8-avx512-vnni")}
    found: dict[str, Any] = {}
    for shape in SHAPES:
        timed = time_all(files, rounds, per_round, shape)
        anchors = {n: t["p50_ms"] for n, t in timed.items() if n != "ours"}
        best = min(anchors.items(), key=lambda kv: kv[1]) if anchors else None
        found[shape.label] = {"p50_ms": {n: t["p50_ms"] for n, t in timed.items()},
                              "speedup_vs_optimum_best_int8": best[1] / timed["ours"]["p50_ms"] if best else None,
                              "optimum_best": best[0] if best else None, "loadavg": os.getloadavg()[0]}
    return found | {"optimum_files": {n: shown(p) for n, p in files.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run(parser, default=RUNS / "minilm-search-cpu", made_by="make demo-search")
    add_work(parser, "search-targets")
    add_out(parser, AREA, "search-targets")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--per-round", type=int, default=20)
    args = parser.parse_args()
    cfg = load_config(EXAMPLE)
    api.run(cfg, args.run)  # every stage skips when already done
    chosen = read_json(args.run / "search" / "chosen.json")
    search_s = float(read_manifest(args.run)["stages"]["search"]["wall_s"])
    alone_s = distil_alone(cfg, chosen, args.work)
    identical = same_weights(args.run / "search" / chosen["run_dir"] / "distill" / "student",
                             args.work / "alone" / "distill" / "student")
    phases = read_json(args.run / "search" / "records.json").get("phases_s", {})
    assert cfg.data.test is not None
    test = read_sts(cfg.data.test.path)
    sts = {"test": test, "unseen": unseen_pairs(test, load_train_texts(cfg.data.train))}
    shipped = args.run / "search" / read_json(args.run / "search" / "records.json")["candidates"][
        chosen["candidate"]]["final"]["path"]
    teacher = Path(str(cfg.teacher.path))
    ours = scores(Artifact("chosen", "onnx", shipped, cfg.teacher.task), sts, cfg)
    theirs = scores(Artifact("teacher", "hf", teacher, cfg.teacher.task), sts, cfg)
    timing = speeds(shipped, args.work, teacher, args.rounds, args.per_round)
    summary = {
        "chosen": chosen["candidate"], "chosen_layers": chosen["student"]["from_teacher"].get("layers"),
        "sts_test": ours["test"], "teacher_sts_test": theirs["test"], "test_share": ours["test"] / theirs["test"],
        "sts_unseen": ours["unseen"], "teacher_sts_unseen": theirs["unseen"],
        "unseen_share": ours["unseen"] / theirs["unseen"], "unseen_pairs": len(sts["unseen"].scores),
        "search_s": search_s, "distil_alone_s": alone_s, "cost_ratio": search_s / alone_s,
        "search_phases_s": phases, "finalist_equals_alone": identical,
        "speedup": {s: t["speedup_vs_optimum_best_int8"] for s, t in timing.items() if isinstance(t, dict)
                    and "p50_ms" in t},
    }
    targets = {"test_share >= 0.97": summary["test_share"] >= KEEP,
               "unseen_share >= 0.97": summary["unseen_share"] >= UNSEEN_SHARE,
               "cost_ratio <= 2": summary["cost_ratio"] <= COST,
               **{f"speedup {s} >= 2.5x": (v or 0) >= SPEEDUP for s, v in summary["speedup"].items()}}
    for key, value in summary.items():
        print(f"{key:24s} {value}")
    for key, met in targets.items():
        print(f"{key:28s} {'met' if met else 'NOT met'}")
    save_results(args, "search-targets", {"summary": summary, "targets": targets, "timing": timing,
                                          "chosen": chosen, "run": shown(args.run)}, threads=os.cpu_count())


if __name__ == "__main__":
    main()
