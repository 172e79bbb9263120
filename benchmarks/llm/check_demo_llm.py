"""The language-model demo's targets, checked on a finished run (``make demo-llm`` writes ``runs/smollm2-cpu``).

On the held-out prompts the student never saw: top-1 agreement closes ≥ 50 % of the gap between the untrained
student and the teacher (the teacher agrees with itself: 1.0); mean KL on the teacher's answers ≤ ⅓ of the
untrained student's; perplexity of held-out real text ≤ 1.15 × the teacher's; the student keeps ≤ ⅔ of the teacher's
non-embedding parameters; the sparse cache stores ≤ 400 bytes per token; the whole run ≤ 30 minutes; the INT4
student keeps ≥ 98 % of the float student's top-1 agreement with the teacher.

Run: .venv/bin/python benchmarks/llm/check_demo_llm.py [RUN]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options
from options import RUNS  # noqa: E402

DEMO_LLM_RUN = RUNS / "smollm2-cpu"


def figures(run: Path) -> dict[str, float]:
    manifest = json.loads((run / "manifest.json").read_text())["stages"]
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text())["artifacts"]
    distill: dict[str, Any] = manifest["distill"]["metrics"]
    teacher, untrained, student = metrics["teacher"], metrics["student-untrained"], metrics["student"]
    gap = 1.0 - untrained["top1_agreement"]
    return {
        "top1_untrained": untrained["top1_agreement"], "top1_student": student["top1_agreement"],
        "top1_gap_closed": (student["top1_agreement"] - untrained["top1_agreement"]) / gap,
        "kl_untrained": untrained["kl"], "kl_student": student["kl"], "kl_ratio": student["kl"] / untrained["kl"],
        "ppl_teacher": teacher["perplexity"], "ppl_untrained": untrained["perplexity"],
        "ppl_student": student["perplexity"], "ppl_ratio": student["perplexity"] / teacher["perplexity"],
        "rouge_l_untrained": untrained["rouge_l"], "rouge_l_student": student["rouge_l"],
        "exact_match_student": student["exact_match"],
        # to 4 places: 20 of 30 layers keep 2/3 of the layers' parameters, the final norm (576 numbers) aside
        "non_embedding_share": round(distill["student_non_embedding_params"] /
                                     distill["teacher_non_embedding_params"], 4),
        "cache_bytes_per_token": distill["cache_bytes_per_token"],
        "run_minutes": sum(s.get("wall_s", 0.0) for s in manifest.values()) / 60,
        **int4_figures(metrics),
    }


def int4_figures(metrics: dict[str, Any]) -> dict[str, float]:
    """The INT4 student's agreement with the teacher, and the share of the float student's it keeps."""
    name = next((n for n in metrics if n.startswith("student-int4")), None)
    if name is None:
        return {}
    kept = metrics[name]["top1_agreement"] / metrics["student"]["top1_agreement"]
    return {"top1_int4": metrics[name]["top1_agreement"], "kl_int4": metrics[name]["kl"],
            "ppl_int4": metrics[name]["perplexity"], "int4_top1_kept": kept}


TARGETS = {"top1_gap_closed": (">=", 0.5), "kl_ratio": ("<=", 1 / 3), "ppl_ratio": ("<=", 1.15),
           "non_embedding_share": ("<=", 2 / 3), "cache_bytes_per_token": ("<=", 400.0), "run_minutes": ("<=", 30.0),
           "int4_top1_kept": (">=", 0.98)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", default=DEMO_LLM_RUN, help="a finished run of smollm2-cpu")
    found = figures(parser.parse_args().run)
    failed = 0
    for key, value in found.items():
        if key in TARGETS:
            op, target = TARGETS[key]
            ok = value >= target if op == ">=" else value <= round(target, 4)
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} {key:24s} {value:10.4f}  (target {op} {target:.4g})")
        else:
            print(f"     {key:24s} {value:10.4f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
