"""The distill stage of a text-generation run: the teacher answers the prompts (cached with its top-k), real text is
scored, the student is derived and trained, the better of trained and untrained is kept.

Writes into ``out``: ``student/`` and ``untrained/`` (Hugging Face folders), ``heldout.txt`` (real text kept out, for
perplexity), ``heldout_answers.jsonl`` + ``heldout_targets.npz`` (held-out prompts with the teacher's answers and
top-k, for agreement), ``notes.json`` (what the report must say, e.g. a fallback to text-only distillation).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import Artifact, atomic_write_bytes, atomic_write_json, atomic_write_text
from edgedistill.config import PipelineConfig
from edgedistill.data.corpus import load_train_texts, split_holdout
from edgedistill.distill.distributed import current_world
from edgedistill.distill.pause import pause_if_stopped
from edgedistill.distill.trainer import CHECKPOINT
from edgedistill.lm.answers import gather_prompts, split_prompts, teacher_answers, text_targets
from edgedistill.lm.records import Generation, SequenceTargets
from edgedistill.lm.students import derive_lm_student, non_embedding_params
from edgedistill.lm.teacher_base import LMTeacher, Prompt
from edgedistill.lm.teachers import load_lm_teacher, student_tokenizer
from edgedistill.lm.token_align import aligned_fraction, check_token_ids, relation_line, vocab_relation
from edgedistill.lm.trainer import LMData, train_lm
from edgedistill.progress import console, progress_bar

HELDOUT = "heldout.txt"
HELDOUT_ANSWERS = "heldout_answers.jsonl"
HELDOUT_TARGETS = "heldout_targets.npz"
TRAIN_TARGETS = "train_targets.npz"  # the teacher's answers to some training prompts: what choices score on
TRAIN_TARGETS_KEPT = 64
NOTES = "notes.json"


def save_model(model: Any, tokenizer: Any, folder: Path) -> None:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def save_targets(path: Path, targets: list[SequenceTargets]) -> None:
    """Sequences as one npz: ids, starts and the top-k rows concatenated, with their lengths."""
    k = next((t.top_ids.shape[1] for t in targets if t.top_ids is not None), 0)
    arrays = {"input_ids": np.concatenate([t.input_ids for t in targets]),
              "lengths": np.asarray([len(t.input_ids) for t in targets]),
              "starts": np.asarray([t.response_start for t in targets]),
              "has_top": np.asarray([t.top_ids is not None for t in targets])}
    if k:
        rows = [t for t in targets if t.top_ids is not None]
        arrays.update(top_ids=np.concatenate([t.top_ids for t in rows]),  # type: ignore[misc]
                      top_logprobs=np.concatenate([t.top_logprobs for t in rows]),  # type: ignore[misc]
                      aligned=np.concatenate([t.aligned if t.aligned is not None else np.ones(t.response_length, bool)
                                              for t in rows]))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue())


def load_targets(path: Path) -> list[SequenceTargets]:
    a = np.load(path)
    out, offset, top = [], 0, 0
    for n, start, has in zip(a["lengths"], a["starts"], a["has_top"]):
        seq = SequenceTargets(a["input_ids"][offset: offset + n], int(start))
        if has and "top_ids" in a:
            r = seq.response_length
            seq.top_ids, seq.top_logprobs = a["top_ids"][top: top + r], a["top_logprobs"][top: top + r]
            seq.aligned = a["aligned"][top: top + r]
            top += r
        out.append(seq)
        offset += n
    return out


def write_heldout(out: Path, texts: list[str], answers: list[tuple[Generation, SequenceTargets]]) -> None:
    atomic_write_text(out / HELDOUT, "".join(t.replace("\n", " ") + "\n" for t in texts))
    atomic_write_text(out / HELDOUT_ANSWERS, "".join(json.dumps(g.as_json()) + "\n" for g, _ in answers))
    save_targets(out / HELDOUT_TARGETS, [t for _, t in answers])


def say_vocab_relation(teacher: LMTeacher, tokenizer: Any, student_rows: int) -> None:
    """One line when teacher and student vocabularies differ only by padding rows (losses use the shared rows)."""
    if teacher.model is None:
        return
    teacher_rows = teacher.model.get_input_embeddings().weight.shape[0]
    relation = vocab_relation(tokenizer, teacher.tokenizer, student_rows, teacher_rows)
    if relation == "padded":
        console.print(relation_line(relation, student_rows, teacher_rows))


def teacher_notes(teacher: LMTeacher, answers: list[tuple[Generation, SequenceTargets]]) -> list[str]:
    notes = list(teacher.notes())
    if not teacher.logprobs and not any("SeqKD" in note for note in notes):  # unless the teacher said so itself
        notes.append("the teacher gave no log-probabilities: the student learnt from its text only (SeqKD)")
    elif answers and aligned_fraction([t for _, t in answers]) < 0.999:
        notes.append(f"teacher and student tokenize differently: {aligned_fraction([t for _, t in answers]):.1%} of "
                     "response tokens align (token-level losses there, sequence-level elsewhere)")
    return notes


def with_token_targets(seq: SequenceTargets) -> SequenceTargets:
    """A text-only answer with the teacher's own tokens as its top-1 (probability 1), so agreement can be scored."""
    if seq.top_ids is not None:
        return seq
    tokens = seq.input_ids[seq.response_start:].astype(np.int32)[:, None]
    return SequenceTargets(seq.input_ids, seq.response_start, tokens, np.zeros(tokens.shape, np.float32),
                           np.ones(len(tokens), dtype=bool))


def selection_score(model: Any, heldout: list[SequenceTargets]) -> float:
    """Top-1 agreement with the teacher on the held-out answers (the keep-better choice)."""
    from edgedistill.lm.metrics import teacher_forcing

    return float(teacher_forcing(model, [with_token_targets(t) for t in heldout])["top1_agreement"])


@dataclass
class TeacherData:
    """What the teacher gave, split as every distillation of this config splits it: real text (trained on, held
    out for perplexity) and prompts with the teacher's answers (trained on, held out for agreement)."""

    texts: list[str]
    heldout_texts: list[str]
    train_prompts: list[Prompt]
    heldout_prompts: list[Prompt]
    answers: list[tuple[Generation, SequenceTargets]]
    cache: Any

    @property
    def train_answers(self) -> list[tuple[Generation, SequenceTargets]]:
        return self.answers[: len(self.train_prompts)]

    @property
    def heldout_answers(self) -> list[tuple[Generation, SequenceTargets]]:
        return self.answers[len(self.train_prompts):]

    def calibration_texts(self) -> list[str]:
        """Texts to rank the teacher's layers and units on: held-out real text, else the training text."""
        return self.heldout_texts or self.texts


def teacher_data(config: PipelineConfig, teacher: LMTeacher, tokenizer: Any, cache_dir: Path, refresh: bool,
                 world: Any) -> TeacherData:
    """Split the texts, gather the prompts and have the teacher answer them (cached in ``cache_dir``: a second
    distillation of the same config, such as a search's candidates, reads the answers back)."""
    texts, heldout_texts = split_holdout(load_train_texts(config.data.train), config.data.holdout,
                                         config.distill.seed) if config.data.train else ([], [])
    prompts = gather_prompts(config, teacher, cache_dir, refresh, world)
    train_prompts, heldout_prompts = split_prompts(prompts, config.data.heldout_prompts, config.distill.seed)
    answers, cache = teacher_answers(config, teacher, tokenizer, train_prompts + heldout_prompts, cache_dir,
                                     refresh, world)
    return TeacherData(texts, heldout_texts, train_prompts, heldout_prompts, answers, cache)


def run(config: PipelineConfig, out: Path, cache_dir: Path, refresh_cache: bool = False,
        stop_after: int | None = None) -> Artifact:
    """Distil a text-generation teacher into the configured student inside ``out``; returns the student (``meta``:
    the stage metrics: student shape, losses, teacher usage, cache size, notes).

    Raises:
        Paused: training stopped at ``stop_after``, before the schedule's end (:mod:`edgedistill.distill.pause`).
    """
    world = current_world()
    teacher = load_lm_teacher(config.teacher)
    tokenizer = student_tokenizer(config, teacher)
    given = teacher_data(config, teacher, tokenizer, cache_dir, refresh_cache, world)
    texts, heldout_texts, answers, cache = given.texts, given.heldout_texts, given.answers, given.cache
    train_prompts, heldout_prompts = given.train_prompts, given.heldout_prompts
    train_answers, heldout_answers = given.train_answers, given.heldout_answers
    seqs = [t for _, t in train_answers if t.response_length > 0]
    k = config.teacher.generation.top_logprobs if teacher.logprobs else 0
    if teacher.white_box and texts and k and config.distill.text_kd:
        seqs += text_targets(teacher, texts, config.distill.max_length, k, tokenizer, cache_dir, refresh_cache,
                             world)
    student, metrics = derive_lm_student(config, teacher.model, tokenizer, given.calibration_texts())
    rows = student.get_input_embeddings().weight.shape[0]
    check_token_ids(seqs, rows, "the training data")
    say_vocab_relation(teacher, tokenizer, rows)
    if world.main:
        write_heldout(out, heldout_texts, heldout_answers)
        save_targets(out / TRAIN_TARGETS, [t for _, t in train_answers[:TRAIN_TARGETS_KEPT]])
        save_model(student, tokenizer, out / "untrained")
    untrained_score = selection_score(student, [t for _, t in heldout_answers]) if heldout_answers else None
    live = teacher.model if any(s.white_box for s in config.distill.losses) else None
    stops = sorted({tokenizer.eos_token_id} - {None})
    data = LMData(seqs, tokenizer.pad_token_id, stops, k)
    with progress_bar("distilling", total=config.distill.steps, unit="steps",
                      hint="lower distill.steps or distill.batch_size") as advance:
        losses = train_lm(student, data, config.distill, out, live, lambda s, loss: advance(1, loss=loss), world,
                          stop_after)
    pause_if_stopped(config.distill, stop_after, out, "text-generation",
                     (lambda folder: save_model(student, tokenizer, folder)) if world.main else None)
    notes = teacher_notes(teacher, answers)
    metrics.update(
        train_sequences=len(seqs), train_prompts=len(train_prompts), heldout_prompts=len(heldout_prompts),
        heldout_texts=len(heldout_texts), loss_first=losses[0], loss_last=losses[-1], world_size=world.size,
        teacher_usage=teacher.usage(), cache=cache.stats(), cache_bytes_per_token=cache.bytes_per_token(),
        notes=notes)
    if teacher.model is not None:
        metrics["teacher_non_embedding_params"] = non_embedding_params(teacher.model)
    del teacher, live
    if not world.main:
        return Artifact("student", "hf", out / "student", "text-generation", {"rank": world.rank})
    keep_trained(student, tokenizer, out, [t for _, t in heldout_answers], untrained_score, config, metrics)
    atomic_write_json(out / NOTES, notes)
    for line in notes:
        console.print(f"[yellow]note:[/yellow] {line}")
    return Artifact("student", "hf", out / "student", "text-generation", metrics)


def keep_trained(student: Any, tokenizer: Any, out: Path, heldout: list[SequenceTargets],
                 untrained_score: float | None, config: PipelineConfig, metrics: dict[str, Any]) -> None:
    """Publish ``out/student``: the trained student, or the untrained one when training lowered the held-out
    agreement with the teacher (``distill.keep_better``)."""
    (out / CHECKPOINT).unlink(missing_ok=True)
    trained_score = selection_score(student, heldout) if heldout else None
    if trained_score is not None and untrained_score is not None:
        metrics.update(selection_metric="top1_agreement on held-out teacher answers",
                       selection_scores={"student": trained_score, "student-untrained": untrained_score})
    worse = trained_score is not None and untrained_score is not None and trained_score < untrained_score
    if config.distill.keep_better and worse:
        shutil.copytree(out / "untrained", out / "student")
        metrics["selected"] = "student-untrained"
        return
    save_model(student, tokenizer, out / "student")
    metrics["selected"] = "student"
