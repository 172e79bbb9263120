"""The distill stage: label the training texts with the teacher, derive the student, train it, keep the better.

Writes into ``out``: ``student/`` (the model to ship, a Hugging Face folder), ``untrained/`` (the student
before training, for the ledger), ``heldout.txt`` (texts kept out of training, for fidelity).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact, atomic_write_text, sha256_path
from edgedistill.config import PipelineConfig
from edgedistill.data.corpus import load_train_texts, split_holdout, texts_hash
from edgedistill.distill.students import select_layers
from edgedistill.distill.teacher_cache import cache_key, load_or_label, run_model
from edgedistill.distill.trainer import CHECKPOINT, train
from edgedistill.models.task_model import load_task_model, save_task_model
from edgedistill.progress import progress_bar

HELDOUT = "heldout.txt"
LABEL_BATCH = 128


def label_with_teacher(config: PipelineConfig, teacher: Any, tokenizer: Any, texts: list[str],
                       cache_dir: Path) -> Any:
    """Teacher outputs for ``texts``, read from the cache when this teacher already labelled them."""
    key = cache_key(sha256_path(config.teacher.path), texts_hash(texts), config.distill.max_length, config.teacher.task)

    def label() -> Any:
        with progress_bar("labelling with the teacher", total=len(texts)) as advance:
            return run_model(teacher, tokenizer, texts, LABEL_BATCH, config.distill.max_length, advance)

    return load_or_label(cache_dir, key, label)


def choose(config: PipelineConfig, trained: Artifact, untrained: Artifact, heldout: list[str],
           teacher_heldout: Any) -> tuple[str, dict[str, Any]]:
    """Compare the trained and untrained student on the eval data; return the winner's name and the scores."""
    from edgedistill.data.stsb import read_sts
    from edgedistill.evaluate.run import evaluate_artifact

    sts = {"eval": read_sts(config.data.eval.path)} if config.data.eval else {}
    metric = "sts_eval_spearman" if sts else "fidelity_cosine"
    scores = {
        a.name: evaluate_artifact(a, teacher_embeddings=teacher_heldout, heldout=heldout, sts=sts, cfg=config.evaluate)[
            metric
        ]
        for a in (trained, untrained)
    }
    winner = trained.name if scores[trained.name] >= scores[untrained.name] else untrained.name
    return winner, {"selection_metric": metric, "selection_scores": scores, "selected": winner}


def run(config: PipelineConfig, out: Path, cache_dir: Path) -> dict[str, Any]:
    """Distil ``config.teacher`` into the configured student inside ``out``; return the stage metrics."""
    teacher, tokenizer = load_task_model(config.teacher.path, config.teacher.task, config.teacher.trust_remote_code)
    texts, heldout = split_holdout(load_train_texts(config.data.train), config.data.holdout, config.distill.seed)
    atomic_write_text(out / HELDOUT, "\n".join(heldout) + "\n")
    targets = label_with_teacher(config, teacher, tokenizer, texts + heldout, cache_dir)
    student = select_layers(teacher, config.student.from_teacher.layers)
    del teacher
    save_task_model(student, tokenizer, out / "untrained")
    with progress_bar("distilling", total=config.distill.steps) as advance:
        losses = train(student, tokenizer, texts, targets[: len(texts)], config.distill, out,
                       on_step=lambda step, loss: advance(1))
    save_task_model(student, tokenizer, out / "student.trained")
    (out / CHECKPOINT).unlink(missing_ok=True)
    trained = Artifact("student", "hf", out / "student.trained", config.teacher.task)
    untrained = Artifact("student-untrained", "hf", out / "untrained", config.teacher.task)
    metrics: dict[str, Any] = {"train_texts": len(texts), "heldout_texts": len(heldout),
                               "loss_first": losses[0], "loss_last": losses[-1]}
    if config.distill.keep_better:
        winner, selection = choose(config, trained, untrained, heldout, targets[len(texts):])
        metrics.update(selection)
        if winner == untrained.name:
            shutil.rmtree(trained.path)
            shutil.copytree(untrained.path, trained.path)
    (out / "student.trained").rename(out / "student")
    return metrics
