"""STS-B quality of distilled all-MiniLM-L6-v2 students against the issue's targets.

For each student (teacher layers kept, e.g. ``0,3,5`` and ``0,5``), distil with the demo's data (Python docs +
STS-B train sentences, scores unused) and the plain recipe — embedding MSE + cosine, batch 64, 1000 steps — then
score on STS-B test (never used for training or for choosing anything) and on its *unseen* part: the test pairs
neither of whose sentences occurs in the training texts. Targets: 3 layers ≥ 81.6, 2 layers ≥ 80.4, and on
unseen pairs ≥ 97% of the teacher's score on the same pairs.

Run: .venv/bin/python benchmarks/distill/sts_targets.py [--work runs/sts-targets] [--students 0,3,5 0,5]
         [--label sts-targets] [--out FILE]
The students are trained in ``WORK/layers-…``; teacher labels are cached in ``WORK/layers-…/cache`` (copied from
``--labels-from`` when given, e.g. ``runs/minilm-cpu``). The scores go to a results document,
benchmarks/distill/results/<date>-<label>-<device>.json, rewritten after each student.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import DEMO_CONFIG, add_out, add_work, area_of, save_results  # noqa: E402

from edgedistill import api  # noqa: E402
from edgedistill.artifacts import Artifact  # noqa: E402
from edgedistill.config import PipelineConfig, load_config  # noqa: E402
from edgedistill.data.corpus import load_train_texts  # noqa: E402
from edgedistill.data.stsb import StsPairs, read_sts  # noqa: E402
from edgedistill.evaluate.run import evaluate_artifact  # noqa: E402

AREA = area_of(__file__)
EXAMPLE = DEMO_CONFIG  # the demo's config, shipped in the package
TARGETS = {3: 81.6, 2: 80.4}
UNSEEN_SHARE = 0.97


def student_config(base: PipelineConfig, layers: list[int], steps: int, batch: int, cosine: float,
                   **distill: Any) -> PipelineConfig:
    """The demo config with another layer subset and the plain recipe (MSE + cosine); ``distill`` overrides more
    ``distill`` keys (lr, dropout, ...)."""
    raw = base.model_dump(mode="json")
    raw["name"] = f"sts-{'-'.join(map(str, layers))}"
    raw["student"] = {"from_teacher": {"layers": layers}}
    raw["distill"].update(steps=steps, batch_size=batch, losses=[{"name": "embedding_mse", "weight": 1.0},
                                                                 {"name": "embedding_cosine", "weight": cosine}])
    raw["distill"].update({k: v for k, v in distill.items() if v is not None})
    return config_from(raw)


def config_from(raw: dict[str, Any]) -> PipelineConfig:
    """A config from a dumped one: an STS-B entry naming a shipped ``split`` was given its ``path`` when validated,
    and a config may not name both, so the path goes."""
    data = raw.get("data") or {}
    for entry in [*(data.get("train") or []), data.get("eval"), data.get("test")]:
        if isinstance(entry, dict) and entry.get("split") is not None and entry.get("source") == "stsb":
            entry.pop("path", None)
    return PipelineConfig.model_validate(raw)


def unseen_pairs(test: StsPairs, train_texts: list[str]) -> StsPairs:
    """The test pairs neither of whose sentences appears (exactly, after stripping) in the training texts."""
    seen = {t.strip() for t in train_texts}
    keep = [i for i, (a, b) in enumerate(zip(test.sentences1, test.sentences2))
            if a.strip() not in seen and b.strip() not in seen]
    return StsPairs([test.sentences1[i] for i in keep], [test.sentences2[i] for i in keep], test.scores[keep])


def scores(artifact: Artifact, sts: dict[str, StsPairs], cfg: PipelineConfig) -> dict[str, float]:
    found = evaluate_artifact(artifact, teacher_outputs=None, heldout=[], sets={k: (v, None) for k, v in sts.items()},
                              cfg=cfg.evaluate)
    return {name: round(found[f"sts_{name}_spearman"], 2) for name in sts}


def seed_labels(out: Path, labels_from: Path | None) -> None:
    """Copy an earlier run's teacher-label store, so the same texts are not labelled again."""
    if labels_from is not None and (labels_from / "cache").is_dir() and not (out / "cache").exists():
        shutil.copytree(labels_from / "cache", out / "cache")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_work(parser, "sts-targets")
    add_out(parser, AREA, "sts-targets")
    parser.add_argument("--students", nargs="+", default=["0,3,5", "0,5"])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cosine", type=float, default=1.0, help="weight of the cosine loss (MSE has 1)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the demo's)")
    parser.add_argument("--dropout", type=float, default=None, help="student dropout in training (default: the demo's)")
    parser.add_argument("--labels-from", type=Path, default=None)
    args = parser.parse_args()
    base = load_config(EXAMPLE)
    assert base.data.test is not None and base.data.eval is not None
    test = read_sts(base.data.test.path)
    unseen = unseen_pairs(test, load_train_texts(base.data.train))
    sts = {"test": test, "unseen": unseen, "dev": read_sts(base.data.eval.path)}
    teacher = api.artifact_from_path(Path(str(base.teacher.path)), base.teacher.task)
    results: dict[str, Any] = {"teacher": scores(teacher, sts, base), "pairs": {k: len(v) for k, v in sts.items()},
                               "recipe": {"steps": args.steps, "batch": args.batch, "cosine": args.cosine,
                                          "lr": args.lr or base.distill.lr,
                                          "dropout": base.distill.dropout if args.dropout is None else args.dropout}}
    print("teacher", results["teacher"], results["pairs"], flush=True)
    for spec in args.students:
        layers = [int(i) for i in spec.split(",")]
        out = args.work / f"layers-{'-'.join(map(str, layers))}"
        out.mkdir(parents=True, exist_ok=True)
        seed_labels(out, args.labels_from)
        cfg = student_config(base, layers, args.steps, args.batch, args.cosine, lr=args.lr, dropout=args.dropout)
        student = api.distill(cfg, out)
        got = scores(student, sts, cfg)
        target = TARGETS.get(len(layers))
        share = got["unseen"] / results["teacher"]["unseen"]
        results[spec] = {**got, "target_test": target, "met_test": target is None or got["test"] >= target,
                         "unseen_share": round(float(share), 4), "met_unseen": bool(share >= UNSEEN_SHARE)}
        print(spec, results[spec], flush=True)
        args.out = save_results(args, "sts-targets", results)  # one file, rewritten after each student


if __name__ == "__main__":
    main()
