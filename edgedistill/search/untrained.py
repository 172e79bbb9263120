"""The cheap first look: every architecture cut from the teacher untrained, then shipped in every precision.

Each architecture is derived from the teacher exactly as ``student.from_teacher`` would (layers chosen by
untrained fidelity when only a count is given, then pinned), saved, exported, fused and quantized into each
precision of the space with the pipeline's own stages, in ``DIR/<architecture>/untrained/`` (a run directory).
Those artifacts are what latency is measured on, and their Task metric is the candidate's untrained quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact
from edgedistill.config import PipelineConfig
from edgedistill.search.configs import candidate_config, precision_steps
from edgedistill.search.space import Architecture, Candidate, TeacherShape


@dataclass
class Scored:
    """An architecture after its untrained look: the student spec with layers pinned, and its artifacts."""

    architecture: Architecture
    spec: dict[str, Any]  # student.from_teacher, layers explicit
    fidelity: float  # the Task's headline fidelity to the teacher on held-out samples, untrained
    artifacts: dict[str, Artifact]  # precision -> shipped artifact (named after the candidate)


def ship(source: Artifact, run_dir: Path, cfg: PipelineConfig, precisions: Sequence[str]) -> dict[str, Artifact]:
    """Export, fuse and quantize ``source`` into every precision, with the pipeline's stages in ``run_dir``."""
    from edgedistill import api

    assert cfg.export is not None  # checked when the config loaded
    form = cfg.fuse.form if cfg.fuse is not None else None
    onnx_model = api.export(source, run_dir, cfg.export, fuse_form=form)
    deployed = api.fuse(onnx_model, run_dir, cfg.fuse) if cfg.fuse is not None else onnx_model
    steps = precision_steps(cfg, precisions)
    made = {"fp32": deployed}
    for step, artifact in zip(steps, api.quantize(deployed, run_dir, steps)):
        made["int8" if step.mode == "dynamic-int8" else "fp16"] = artifact
    return {p: made[p] for p in precisions}


def score_architecture(cfg: PipelineConfig, architecture: Architecture, teacher: Any, shape: TeacherShape,
                       heldout: list[str], teacher_heldout: Any, folder: Path,
                       layers: list[int] | None = None) -> Scored:
    """Derive, pin, save and ship one architecture untrained (skipped stage by stage when already done);
    ``layers``: the teacher layers already chosen for its depth (else chosen here by fidelity)."""
    from edgedistill.distill.layer_search import fidelity
    from edgedistill.distill.stage import derive_student, student_tokenizer
    from edgedistill.models.task_model import save_task_model

    assert cfg.student.search is not None
    precisions = cfg.student.search.space.precision
    spec = architecture.from_teacher(shape, layers)
    student, info = derive_student(candidate_config(cfg, spec, precisions), teacher, heldout,
                                   output_width=teacher_heldout.shape[1])
    pinned = architecture.from_teacher(shape, layers=list(info["student_layers"]))
    tokenizer = student_tokenizer(cfg, teacher)
    hf = folder / "untrained" / "student"
    if not (hf / "config.json").is_file():
        save_task_model(student, tokenizer, hf)
    score = fidelity(student, tokenizer, heldout, teacher_heldout, cfg.distill.max_length)
    shipped = ship(Artifact(architecture.name, "hf", hf, cfg.teacher.task), folder / "untrained", cfg, precisions)
    named = {p: replace(a, name=Candidate(architecture, p).name) for p, a in shipped.items()}
    return Scored(architecture, pinned.model_dump(mode="json", exclude_defaults=True), float(score), named)
