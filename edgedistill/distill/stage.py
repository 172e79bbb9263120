"""The distill stage: label the training texts with the teacher, derive the student, train it, keep the better.

Writes into ``out``: ``student/`` (the model to ship, a Hugging Face folder), ``untrained/`` (the student
before training, for the ledger), ``heldout.txt`` (texts kept out of training, for fidelity).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact, atomic_write_text
from edgedistill.config import HttpTeacherConfig, PipelineConfig
from edgedistill.data.corpus import load_train_texts, split_holdout, texts_hash
from edgedistill.distill.depth import select_layers
from edgedistill.distill.distributed import SINGLE, World, current_world
from edgedistill.distill.from_config import (
    check_output_width,
    check_tokenizer_fits,
    from_factory,
    from_hf_config,
)
from edgedistill.distill.hidden_width import prune_hidden, residual_activation_scores
from edgedistill.distill.label_store import LabelStore, store_key
from edgedistill.distill.layer_search import choose_layers, fidelity
from edgedistill.distill.pause import pause_if_stopped
from edgedistill.distill.trainer import CHECKPOINT, train
from edgedistill.distill.width import prune_width, unit_activation_scores
from edgedistill.errors import ConfigError
from edgedistill.models.task_model import TaskModel, save_task_model
from edgedistill.models.teachers import Teacher, load_teacher
from edgedistill.models.tokenizer_check import check_vocabulary
from edgedistill.progress import progress_bar
from edgedistill.tasks import get_task

HELDOUT = "heldout.txt"
LABEL_BATCH = 128


def label_with_teacher(config: PipelineConfig, teacher: Teacher, texts: list[str], cache_dir: Path,
                       world: World = SINGLE, refresh: bool = False) -> np.ndarray:
    """Teacher outputs for ``texts`` from the resumable store; only rows not yet stored are requested
    (``refresh``: the store is emptied first, so every row is asked again).

    Under torchrun each rank labels its share of the chunks (chunk ``c`` on rank ``c % N``); rank 0 then
    consolidates the store and every rank reads it memory-mapped.
    """
    preprocessing = {"max_length": config.distill.max_length, "task": config.teacher.task}
    files = get_task(config.teacher.task).modality == "image"  # samples are image paths: their contents count
    key = store_key(teacher.identity(), texts_hash(texts, files), preprocessing)
    http = config.teacher.http
    chunk = http.batch_size if isinstance(http, HttpTeacherConfig) else LABEL_BATCH

    def open_store(refresh: bool = False) -> LabelStore:
        return LabelStore(cache_dir, key, len(texts), chunk, {"teacher": teacher.identity(), **preprocessing},
                          refresh=refresh)

    if not world.distributed:
        with progress_bar("labelling with the teacher", total=len(texts), unit="samples") as advance:
            return open_store(refresh).label_all(teacher, texts, progress=advance)
    store = open_store(refresh) if world.main else None  # rank 0 sets the store up (or clears it) first
    world.barrier()
    store = store or open_store()
    store.fill(teacher, texts, [c for c in range(store.n_chunks) if world.owns(c)])
    world.barrier()
    if world.main:
        store.consolidate()
    world.barrier()
    return open_store().consolidate()


def choose(config: PipelineConfig, trained: Artifact, untrained: Artifact, heldout: list[str],
           teacher_heldout: Any) -> tuple[str, dict[str, Any]]:
    """Compare the trained and untrained student with the Task's selection metric (on the eval data where there is
    some, else fidelity to the teacher on the held-out samples); return the winner's name and the scores."""
    from edgedistill.evaluate.run import evaluate_artifact
    from edgedistill.evaluate.sets import read_sets

    task = get_task(config.teacher.task)
    sets = read_sets({"eval": config.data.eval} if config.data.eval else {}, untrained)
    metric = task.selection_metric(bool(sets))
    scores = {a.name: evaluate_artifact(a, teacher_outputs=teacher_heldout, heldout=heldout, sets=sets,
                                        cfg=config.evaluate)[metric] for a in (trained, untrained)}
    winner = trained.name if scores[trained.name] >= scores[untrained.name] else untrained.name
    return winner, {"selection_metric": metric, "selection_scores": scores, "selected": winner}


def student_tokenizer(config: PipelineConfig, teacher: Any) -> Any:
    """The tokenizer the student reads with: the teacher's own, or ``teacher.tokenizer`` for recorded/http teachers.

    Raises:
        ConfigError: neither exists, or the folder holds no loadable tokenizer.
    """
    tokenizer = getattr(teacher, "tokenizer", None)
    if tokenizer is not None:
        return tokenizer
    folder = config.teacher.tokenizer
    if folder is None:
        raise ConfigError(f"teacher.tokenizer: a {config.teacher.source} teacher has no tokenizer to share; give "
                          "the folder of the tokenizer the student should read with")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"teacher.tokenizer: cannot load a tokenizer from {folder}: {str(err).splitlines()[0]}") \
            from None


def derive_student(config: PipelineConfig, teacher: Any, heldout: list[str],
                   output_width: int | None = None) -> tuple[TaskModel, dict[str, Any]]:
    """The untrained student: from the teacher's layers (and width), a Hugging Face config, or a factory.

    Raises:
        ConfigError: the student cannot take the teacher's tokens or does not match its output width.
    """
    spec, seed = config.student, config.distill.seed
    tokenizer = student_tokenizer(config, teacher)
    model = getattr(teacher, "model", None)
    pooling = (model.pooling, model.normalize) if isinstance(model, TaskModel) else ("mean", True)
    if spec.from_teacher is not None:
        if not isinstance(model, TaskModel):
            raise ConfigError("student.from_teacher: deriving a student needs a white-box (huggingface) teacher")
        student, info = from_teacher(config, model, tokenizer, heldout)
    elif spec.hf_config is not None:
        student, info = from_hf_config(spec.hf_config, config.teacher.task, seed, *pooling,
                                       num_labels=output_width), {"student_source": "hf_config"}
    else:
        assert spec.factory is not None
        student, info = from_factory(spec.factory, config.teacher.task, *pooling), {"student_source": "factory"}
    check_tokenizer_fits(student, tokenizer)
    if output_width is not None:
        check_output_width(student, tokenizer, heldout, output_width)
    return student, info


def from_teacher(config: PipelineConfig, model: TaskModel, tokenizer: Any,
                 heldout: list[str]) -> tuple[TaskModel, dict[str, Any]]:
    """A layer subset of a white-box teacher (explicit, uniform or searched), then width reduction if asked."""
    spec = config.student.from_teacher
    assert spec is not None
    max_length = config.distill.max_length
    layers, scores = choose_layers(model, tokenizer, spec, heldout, max_length, config.distill.seed)
    info: dict[str, Any] = {"student_layers": layers}
    if scores:
        info["layer_search"] = scores
    student = select_layers(model, layers)
    texts = heldout[: spec.importance_texts]
    measured = spec.importance == "activation"  # else the weights' magnitudes rank the units
    if spec.heads is not None or spec.intermediate_size is not None:
        ranks = unit_activation_scores(student, tokenizer, texts, max_length) if measured else None
        student = prune_width(student, spec.heads, spec.intermediate_size, ranks)
    if spec.hidden_size is not None:
        units = residual_activation_scores(student, tokenizer, texts, max_length) if measured else None
        student = prune_hidden(student, spec.hidden_size, units)
    if spec.heads is None and spec.intermediate_size is None and spec.hidden_size is None:
        return student, info
    arch, shape = student.architecture, student.backbone.config
    info.update(student_heads=arch.num_heads(shape), student_intermediate_size=arch.ffn_size(shape),
                student_hidden_size=arch.hidden_size(shape))
    return student, info


def untrained_artifact(config: PipelineConfig, out: Path) -> Artifact:
    """The student before training (saved by :func:`run`; the baseline that training has to beat)."""
    return Artifact("student-untrained", "hf", out / "untrained", config.teacher.task)


def run(config: PipelineConfig, out: Path, cache_dir: Path, refresh_cache: bool = False,
        stop_after: int | None = None) -> Artifact:
    """Distil ``config.teacher`` into the configured student inside ``out``: ``out/student`` (returned; its
    ``meta`` holds the stage metrics: the student's shape, training losses, the keep-better choice) and
    ``out/untrained`` (:func:`untrained_artifact`, the student before training).

    ``refresh_cache`` (``--force``): ask the teacher again for every row instead of reading the label store.
    ``stop_after``: pause at that step (:mod:`edgedistill.distill.pause`).

    Raises:
        Paused: training stopped at ``stop_after``, before the schedule's end (the checkpoint stays in ``out``).

    Under torchrun every rank runs this; ranks other than 0 label and train alongside rank 0 and return after
    training without writing anything into ``out``.
    """
    world = current_world()
    teacher = load_teacher(config.teacher, config.distill.max_length)
    texts, heldout = split_holdout(load_train_texts(config.data.train), config.data.holdout, config.distill.seed)
    tokenizer = student_tokenizer(config, teacher)
    if get_task(config.teacher.task).modality == "text":
        check_vocabulary(tokenizer, texts, config.teacher.tokenizer or config.teacher.path)
    if world.main:
        atomic_write_text(out / HELDOUT, "\n".join(heldout) + "\n")
    targets = label_with_teacher(config, teacher, texts + heldout, cache_dir, world, refresh_cache)
    student, metrics = derive_student(config, teacher, heldout, output_width=targets.shape[1])
    if world.main:
        save_task_model(student, tokenizer, out / "untrained")
    live = teacher.model if any(s.white_box for s in config.distill.losses) else None
    teacher_heldout = np.asarray(targets[len(texts):])

    def evaluate(model: TaskModel) -> float:
        return fidelity(model, tokenizer, heldout, teacher_heldout, config.distill.max_length)

    hint = "lower distill.steps (or raise distill.batch_size on faster hardware)"
    with progress_bar("distilling", total=config.distill.steps, unit="steps", hint=hint) as advance:
        losses = train(student, tokenizer, texts, targets, config.distill, out,
                       on_step=lambda step, loss: advance(1, loss=loss), teacher=live, evaluate=evaluate,
                       world=world, stop_after=stop_after)
    del teacher, live
    pause_if_stopped(config.distill, stop_after, out, config.teacher.task,
                     (lambda folder: save_task_model(student, tokenizer, folder)) if world.main else None)
    if not world.main:
        return Artifact("student", "hf", out / "student", config.teacher.task,
                        {"rank": world.rank, "loss_last": losses[-1]})
    save_task_model(student, tokenizer, out / "student.trained")
    (out / CHECKPOINT).unlink(missing_ok=True)
    trained = Artifact("student", "hf", out / "student.trained", config.teacher.task)
    untrained = untrained_artifact(config, out)
    metrics.update({"train_texts": len(texts), "heldout_texts": len(heldout), "world_size": world.size,
                    "loss_first": losses[0], "loss_last": losses[-1]})
    if config.distill.keep_better:
        winner, selection = choose(config, trained, untrained, heldout, teacher_heldout)
        metrics.update(selection)
        if winner == untrained.name:
            shutil.rmtree(trained.path)
            shutil.copytree(untrained.path, trained.path)
    (out / "student.trained").rename(out / "student")
    return Artifact("student", "hf", out / "student", config.teacher.task, metrics)
