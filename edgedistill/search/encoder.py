"""The encoder Tasks' side of a search (sentence-embedding, sequence- and image-classification).

The teacher labels the training texts once (the store every candidate's distillation then reads). Each
architecture is derived from the teacher exactly as ``student.from_teacher`` would (layers chosen once per depth,
:mod:`edgedistill.search.layers`, then pinned), saved, exported, fused and quantized into each precision of the
space with the pipeline's own stages, in ``DIR/<architecture>/untrained/`` (a run directory). Those artifacts are
what latency is measured on (the bench stage, every candidate interleaved, at the search shapes; or the roofline
estimate for a target), and their Task metric is the candidate's untrained quality.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact
from edgedistill.search import latency
from edgedistill.search.configs import candidate_config
from edgedistill.search.space import Architecture, Candidate, TeacherShape, check_space
from edgedistill.search.task_search import Scored, TaskSearch


class EncoderSearch(TaskSearch):
    latency_iterations = 20

    teacher: Any
    heldout: list[str]
    teacher_heldout: np.ndarray
    sets: dict[str, Any]
    reference: Artifact

    def prepare(self) -> TeacherShape:
        from edgedistill.data.corpus import load_train_texts, split_holdout
        from edgedistill.distill.stage import label_with_teacher
        from edgedistill.evaluate.sets import read_sets
        from edgedistill.models.teachers import load_teacher
        from edgedistill.pipeline_data import teacher_artifact

        cfg = self.cfg
        self.teacher = load_teacher(cfg.teacher, cfg.distill.max_length)
        shape = TeacherShape.of(self.teacher.model)
        check_space(self.spec.space, shape)  # before any labelling
        texts, self.heldout = split_holdout(load_train_texts(cfg.data.train), cfg.data.holdout, cfg.distill.seed)
        targets = label_with_teacher(cfg, self.teacher, texts + self.heldout, self.cache_dir)
        self.teacher_heldout = np.asarray(targets[len(texts):])
        reference = teacher_artifact(cfg)
        assert reference is not None  # the config requires a huggingface teacher for a search
        self.reference = reference
        self.sets = read_sets({"eval": cfg.data.eval} if cfg.data.eval else {}, reference)
        return shape

    def default_metric(self) -> str:
        from edgedistill.tasks import get_task

        return get_task(self.cfg.teacher.task).selection_metric(bool(self.sets))

    def metrics(self, artifact: Artifact, metric: str) -> dict[str, float]:
        from edgedistill.evaluate.run import evaluate_artifact

        found = evaluate_artifact(artifact, teacher_outputs=self.teacher_heldout, heldout=self.heldout,
                                  sets=self.sets, cfg=self.cfg.evaluate)
        return {k: float(v) for k, v in found.items() if isinstance(v, float)}

    def teacher_metrics(self, metric: str) -> dict[str, float]:
        return self.metrics(self.reference, metric)

    def untrained_heldout(self) -> list[str]:
        return self.heldout[: self.spec.heldout]

    def choose_layers(self, count: int, metric: str) -> tuple[list[int], dict[str, Any]]:
        from edgedistill.search.layers import choose_subset

        return choose_subset(self.teacher.model, self.teacher.tokenizer, count, self.untrained_heldout(), self.sets,
                             metric, self.cfg.evaluate, self.cfg.distill.max_length, self.cfg.distill.seed)

    def score(self, architecture: Architecture, shape: TeacherShape, layers: list[int] | None,
              folder: Path) -> Scored:
        from edgedistill.distill.layer_search import fidelity
        from edgedistill.distill.stage import derive_student, student_tokenizer
        from edgedistill.models.task_model import save_task_model

        cfg, precisions = self.cfg, self.spec.space.precision
        heldout = self.untrained_heldout()
        teacher_heldout = self.teacher_heldout[: len(heldout)]
        spec = architecture.from_teacher(shape, layers)
        student, info = derive_student(candidate_config(cfg, spec, precisions), self.teacher, heldout,
                                       output_width=teacher_heldout.shape[1])
        pinned = architecture.from_teacher(shape, layers=list(info["student_layers"]))
        tokenizer = student_tokenizer(cfg, self.teacher)
        hf = folder / "untrained" / "student"
        if not (hf / "config.json").is_file():
            save_task_model(student, tokenizer, hf)
        score = fidelity(student, tokenizer, heldout, teacher_heldout, cfg.distill.max_length)
        shipped = self.ship_untrained(Artifact(architecture.name, "hf", hf, cfg.teacher.task), folder / "untrained",
                                      precisions)
        named = {p: replace(a, name=Candidate(architecture, p).name) for p, a in shipped.items()}
        return Scored(architecture, pinned.model_dump(mode="json", exclude_defaults=True), float(score), named)

    def time(self, scored: dict[str, Scored]) -> dict[str, dict[str, float]]:
        shapes = self.spec.shapes or self.cfg.bench.shapes
        if self.spec.target == latency.LOCAL:
            shipped = [a for s in scored.values() for a in s.artifacts.values()]
            return latency.measured(shipped, self.cfg.bench, shapes, self.out / "latency", self.iterations)
        items = [(a.name, s.artifacts.get("fp32", a).path, p) for s in scored.values()
                 for p, a in s.artifacts.items()]  # the target's engine is built from the float graph
        return latency.estimated(items, self.spec.target, shapes)

    def latency_kind(self) -> str:
        return latency.latency_kind(self.spec.target)
