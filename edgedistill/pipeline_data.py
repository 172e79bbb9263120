"""What the pipeline's later stages take from one config and the run so far: the teacher as an artifact, the
teacher's stored outputs (read from the label store distill filled, never asked again), the quantize stage's
calibration and evaluation data, and hashes of data so new data redoes a stage."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.artifacts import Artifact, sha256_json
from edgedistill.config import Calibrated, PipelineConfig, QuantizeStep, WeightOnly
from edgedistill.errors import InputError
from edgedistill.rundir import dump

if TYPE_CHECKING:
    import numpy as np

    from edgedistill.quantize.data import QadData, QuantizeData


def data_fingerprint(data: QuantizeData | None) -> str | None:
    """A hash of the texts a quantization step saw, so new calibration or eval texts redo the stage."""
    if data is None:
        return None
    from edgedistill.data.corpus import texts_hash

    sts = (data.sts.sentences1, data.sts.sentences2, data.sts.scores.tolist()) if data.sts is not None else None
    qad = [str(data.qad.student), texts_hash(data.qad.texts), dump(data.qad.losses)] if data.qad else None
    targets = [sha256_json([t.input_ids.tolist(), t.response_start]) for t in data.targets]
    return sha256_json([data.calibration_texts, data.eval_texts, sts, data.max_length, qad, targets])


def needs_data(step: QuantizeStep) -> bool:
    """Whether a step needs calibration or evaluation data: every calibrated mode does, GPTQ, and a weight-only
    budget."""
    return isinstance(step, Calibrated) or (isinstance(step, WeightOnly) and (
        step.algorithm == "gptq" or step.budget is not None))


def pipeline_lm_quantize_data(cfg: PipelineConfig, steps: list[QuantizeStep], distill_dir: Path) -> QuantizeData:
    """What a text-generation run's weight-only steps take: GPTQ's calibration prompts from its training texts, and
    for a budget the teacher's answers to training prompts the distill stage kept (never the held-out ones)."""
    from edgedistill.data.corpus import load_train_texts, split_holdout
    from edgedistill.quantize.data import QuantizeData

    weight_only = [s for s in steps if isinstance(s, WeightOnly)]
    texts: list[str] = []
    if any(s.algorithm == "gptq" for s in weight_only):
        if not cfg.data.train:
            raise InputError("quantize: weight-only gptq calibrates on data.train texts; give data.train or use "
                             "rtn/hqq")
        train, _ = split_holdout(load_train_texts(cfg.data.train), cfg.data.holdout, cfg.distill.seed)
        texts = train[: max(s.calibration_size for s in weight_only)]
    targets = budget_targets(distill_dir) if any(s.budget is not None for s in weight_only) else []
    return QuantizeData(calibration_texts=texts, max_length=cfg.distill.max_length, targets=targets,
                        threads=cfg.bench.threads)


def budget_targets(distill_dir: Path) -> list[Any]:
    """The teacher's answers to training prompts that a text-generation run's distill stage kept, which a
    weight-only budget scores on.

    Raises:
        InputError: the distill stage did not keep them.
    """
    from edgedistill.lm.stage import TRAIN_TARGETS, load_targets, with_token_targets

    path = distill_dir / TRAIN_TARGETS
    if not path.is_file():
        raise InputError(f"{path} is missing: a weight-only budget scores on the teacher's answers that a "
                         "text-generation run's distill stage keeps; rerun distill with --force")
    return [with_token_targets(t) for t in load_targets(path)]


def pipeline_quantize_data(cfg: PipelineConfig, out: Path) -> QuantizeData:
    """Calibration texts from the training texts (never the held-out ones), evaluation on the held-out texts
    and the eval (dev) STS pairs — the test split is never used for a choice."""
    from edgedistill.data.corpus import load_train_texts, split_holdout
    from edgedistill.data.stsb import read_sts
    from edgedistill.quantize.data import QuantizeData

    train, heldout = split_holdout(load_train_texts(cfg.data.train), cfg.data.holdout, cfg.distill.seed)
    size = max(s.calibration_size for s in cfg.quantize if isinstance(s, Calibrated))
    qad = qad_data(cfg, out, train, heldout) if any(s.mode == "qad-int8" for s in cfg.quantize) else None
    return QuantizeData(calibration_texts=train[:size], eval_texts=heldout,
                        sts=read_sts(cfg.data.eval.path) if cfg.data.eval and cfg.data.eval.source == "stsb" else None,
                        cache_dir=out / "cache" / "calibration", max_length=cfg.evaluate.max_length,
                        threads=cfg.bench.threads, qad=qad)


def array_hash(array: np.ndarray) -> str:
    import hashlib

    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def stored_teacher_outputs(cfg: PipelineConfig, out: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(training texts, held-out texts, the teacher's outputs for both in that order), read from the label store
    the distill stage filled — the teacher is not asked again for anything stored."""
    from edgedistill.data.corpus import load_train_texts, split_holdout
    from edgedistill.distill.stage import label_with_teacher
    from edgedistill.models.teachers import load_teacher

    train, heldout = split_holdout(load_train_texts(cfg.data.train), cfg.data.holdout, cfg.distill.seed)
    targets = label_with_teacher(cfg, load_teacher(cfg.teacher, cfg.distill.max_length), train + heldout,
                                 out / "cache")
    return train, heldout, targets


def teacher_artifact(cfg: PipelineConfig) -> Artifact | None:
    """The teacher as the evaluate and bench stages run it: a Hugging Face folder or an ONNX file; None for a
    recorded or HTTP teacher (its outputs come from the label store; there is nothing local to time)."""
    t = cfg.teacher
    if t.source == "huggingface" and t.path is not None:
        return Artifact("teacher", "hf", t.path, t.task)
    if t.source == "onnx" and t.path is not None:
        return Artifact("teacher", "onnx", t.path, t.task, {"tokenizer": str(t.tokenizer)} if t.tokenizer else {})
    return None


def qad_data(cfg: PipelineConfig, out: Path, train: list[str], heldout: list[str]) -> QadData:
    """What quantization-aware distillation trains from: the float student, the training texts and the teacher's
    outputs for them — read from the label store the distill stage filled, so the teacher does not run again."""
    from edgedistill.quantize.data import QadData, default_qad_losses

    _, _, targets = stored_teacher_outputs(cfg, out)
    losses = [s for s in cfg.distill.losses if not s.white_box] or default_qad_losses()
    return QadData(student=out / "distill" / "student", texts=train, teacher_outputs=targets[: len(train)],
                   losses=losses, seed=cfg.distill.seed)

