"""Quantization-aware distillation (mode ``qad-int8``): the float student, fake-quantized, trained on the teacher.

1. load the float student (the Hugging Face folder the ONNX model came from), wrap its Linears in fake
   quantization (:mod:`fake_quant`) with the preset's grids, and calibrate the activation scales (MinMax,
   the calibration texts, as static INT8 does);
2. train weights and activation scales a few hundred steps at a low learning rate with the distillation
   engine (:func:`edgedistill.distill.trainer.train`: its losses, schedule, checkpoints and resume) against
   the teacher's outputs;
3. export the trained float weights (same exporter and ranges as the source ONNX), and let ONNX Runtime's
   static QDQ quantizer write it with the *learned* activation ranges (handed over as its calibration cache,
   so the graph has the same form as static INT8); weight scales are max|w| per channel on both sides;
4. feed residual Adds etc. the float tensor again (torch quantizes only Linear inputs), check every
   activation Q/DQ carries the learned scale, and compare ONNX Runtime with the fake-quantized torch model.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from edgedistill.artifacts import Artifact, sha256_json
from edgedistill.config import DistillConfig, DynamicAxes, ExportConfig, QadInt8, Range
from edgedistill.config.export import OPSET_MAX, OPSET_MIN, ORT_OPSET
from edgedistill.errors import InputError, VerificationError
from edgedistill.models.task_model import TaskModel, load_task_model
from edgedistill.quantize import fake_quant as fq
from edgedistill.quantize.calibration import calibration_texts
from edgedistill.quantize.common import ONNX_NAME, check_float_model, prepare, publish, staging
from edgedistill.quantize.data import QadData, QuantizeData
from edgedistill.quantize.groups import LAYER, node_groups
from edgedistill.quantize.presets import StaticSettings, resolve
from edgedistill.quantize.static import CalibratedModel, check_qdq, quantize_nodes, settings_meta
from edgedistill.quantize.trt_qdq import reroute_float_consumers

log = logging.getLogger(__name__)
BACKBONE = "backbone."
CHECK_TEXTS = 64
MIN_CHECK_COSINE = 0.99  # ORT vs the fake-quantized torch model; u8s8 without VNNI may saturate (see presets)


def qad_inputs(step: QadInt8, data: QuantizeData | None) -> tuple[QuantizeData, QadData, StaticSettings]:
    """The data and settings, checked. Raises InputError naming what is missing."""
    if data is None or data.qad is None:
        raise InputError("qad-int8 needs the float student and the teacher's outputs (QuantizeData.qad); "
                         "run it from the pipeline, or pass QadData(student=..., texts=..., teacher_outputs=...)")
    qad = data.qad
    if len(qad.texts) < step.qad_batch_size:
        raise InputError(f"qad-int8: {len(qad.texts)} training texts, fewer than one batch "
                         f"(quantize.qad_batch_size {step.qad_batch_size})")
    if isinstance(qad.teacher_outputs, np.ndarray) and len(qad.teacher_outputs) != len(qad.texts):
        raise InputError(f"qad-int8: {len(qad.teacher_outputs)} teacher outputs for {len(qad.texts)} texts")
    return data, qad, resolve(step)


def export_config(source: Path) -> ExportConfig:
    """The exporter, opset and dynamic ranges the source ONNX model was exported with (its metadata)."""
    proto = onnx.load(str(source), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), ORT_OPSET)

    def rng(key: str, default: Range) -> Range:
        return Range(min=int(meta[key].split(",")[0]), max=int(meta[key].split(",")[1])) if key in meta else default

    axes = DynamicAxes()
    dynamic = DynamicAxes(batch=rng("edgedistill.batch_range", axes.batch),
                          sequence=rng("edgedistill.sequence_range", axes.sequence))
    exporter = meta.get("edgedistill.exporter", "dynamo")
    return ExportConfig(opset=min(max(opset, OPSET_MIN), OPSET_MAX),
                        exporter="torchscript" if exporter == "torchscript" else "dynamo", dynamic=dynamic)


def skipped_linears(student: TaskModel, exclude: list[str]) -> list[str]:
    """Module paths of Linears kept float: ``exclude`` entries name a module (``encoder.layer.0.output.dense``)
    or a layer (``layer.0``). Raises InputError for an entry that names none."""
    paths = [p for p, m in student.named_modules() if isinstance(m, torch.nn.Linear)]
    labels = {p: p.removeprefix(BACKBONE) for p in paths}
    layer = {p: f"layer.{m.group(1)}" for p, m in ((p, LAYER.search(p)) for p in paths) if m}
    skipped = []
    for entry in exclude:
        hits = [p for p in paths if labels[p] == entry or layer.get(p) == entry]
        if not hits:
            raise InputError(f"quantize.exclude: '{entry}' is no Linear of the student; e.g. {labels[paths[0]]}")
        skipped += hits
    return skipped


def text_batches(tokenizer: Any, texts: list[str], batch_size: int, max_length: int) -> list[dict[str, Any]]:
    """Batches as static INT8's calibration reads them: each padded to its longest text."""
    return [dict(tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                           return_tensors="pt")) for i in range(0, len(texts), batch_size)]


def fake_quantize(student: TaskModel, tokenizer: Any, texts: list[str], settings: StaticSettings,
                  exclude: list[str], data: QuantizeData) -> int:
    """Wrap ``student``'s Linears in fake quantization and calibrate; returns the number of input quantizers."""
    spec = fq.QuantSpec.from_settings(settings.symmetric_activations, settings.reduce_range, settings.per_channel)
    wrapped = fq.wrap_linears(student, spec, skipped_linears(student, exclude))
    batches = text_batches(tokenizer, texts, data.batch_size, data.max_length)
    count = fq.share_input_quantizers(student, wrapped, batches[0])
    fq.calibrate(student, batches)
    return count


def distill_config(step: QadInt8, qad: QadData, data: QuantizeData) -> DistillConfig:
    return DistillConfig(losses=qad.losses, steps=step.qad_steps, lr=step.qad_lr, batch_size=step.qad_batch_size,
                         max_length=data.max_length, seed=qad.seed, checkpoint_every=50, eval_every=None,
                         keep_better=False)


def work_dir(out: Path, step: QadInt8, qad: QadData, texts: list[str]) -> Path:
    """Checkpoints of this exact training (config, student, texts) survive an interrupted run; removed after."""
    losses = [s.model_dump(mode="json") for s in qad.losses]
    key = sha256_json([step.model_dump(mode="json"), str(qad.student), qad.texts, losses, texts, qad.seed])[:12]
    return out / f".qad-{key}"


def train(student: TaskModel, tokenizer: Any, step: QadInt8, qad: QadData, data: QuantizeData,
          work: Path) -> list[float]:
    from edgedistill.distill.trainer import train as distill_train
    from edgedistill.progress import progress_bar

    with progress_bar("quantization-aware distillation", total=step.qad_steps, unit="steps") as advance:
        return distill_train(student, tokenizer, qad.texts, qad.teacher_outputs, distill_config(step, qad, data),
                             work, on_step=lambda s, loss: advance(1))


# ---------------------------------------------------------------- QDQ export


def activation_ranges(student: TaskModel, source: onnx.ModelProto, prepared: onnx.ModelProto,
                      settings: StaticSettings) -> tuple[dict[str, tuple[float, float]], set[str]]:
    """The learned range of each quantized MatMul's activation input (by tensor name in ``prepared``), and
    those MatMuls' node names. Raises VerificationError if two quantizers claim one tensor."""
    by_name = {n.name: n for n in prepared.graph.node}
    quantizers = {p: m.input_quantizer for p, m in student.named_modules() if isinstance(m, fq.QuantLinear)}
    ranges: dict[str, tuple[float, float]] = {}
    owner: dict[str, fq.ActivationQuantizer] = {}
    nodes: set[str] = set()
    for group in node_groups(source, settings.op_types, "matmul"):
        quantizer = quantizers.get(BACKBONE + group.label)
        if quantizer is None:
            continue  # excluded: float
        for name in group.nodes:
            tensor = by_name[name].input[0]
            if owner.setdefault(tensor, quantizer) is not quantizer:
                raise VerificationError(f"{tensor}: one ONNX tensor feeds Linears trained with different scales")
            scale, zero_point = quantizer.qparams()
            ranges[tensor] = fq.qparams_range(scale, zero_point, quantizer.spec)
            nodes.add(name)
    if not nodes:
        raise VerificationError("no MatMul of the export maps to a fake-quantized Linear (module names missing)")
    return ranges, nodes


def write_ranges(ranges: dict[str, tuple[float, float]], path: Path) -> Path:
    """ORT's calibration cache holding exactly ``ranges``: quantize_static then calibrates nothing."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

    data = {t: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
            for t, (lo, hi) in ranges.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
    return path


def check_scales(path: Path, ranges: dict[str, tuple[float, float]], student: TaskModel) -> float:
    """Largest relative difference between a QuantizeLinear's scale and the learned one; VerificationError > 1e-5."""
    proto = onnx.load(str(path), load_external_data=False)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    q_scale = {n.input[0]: float(inits[n.input[1]]) for n in proto.graph.node
               if n.op_type == "QuantizeLinear" and n.input[0] in ranges and n.input[1] in inits}
    missing = sorted(set(ranges) - set(q_scale))
    if missing:
        raise VerificationError(f"QDQ export: no QuantizeLinear on {missing[:3]} ({len(missing)} tensors)")
    spec = next(q.spec for q in fq.input_quantizers(student))
    worst = max(abs(q_scale[t] - (hi - lo) / (spec.act_qmax - spec.act_qmin)) / q_scale[t]
                for t, (lo, hi) in ranges.items())
    if worst > 1e-5:
        raise VerificationError(f"QDQ export: activation scales differ from the learned ones by {worst:.1e}")
    return worst


def write_qdq(student: TaskModel, tokenizer: Any, source: Path, settings: StaticSettings, folder: Path) -> Path:
    """Export the trained float weights and write them as QDQ with the learned activation ranges."""
    from edgedistill.export.exporter import export_onnx

    float_path = folder / "float" / ONNX_NAME
    plain = fq.unwrap_linears(copy.deepcopy(student))
    export_onnx(plain, tokenizer, export_config(source), float_path)  # type: ignore[arg-type]
    prepared = prepare(float_path, folder / "prepared" / ONNX_NAME)
    exported = onnx.load(str(float_path), load_external_data=False)
    ranges, nodes = activation_ranges(student, exported, onnx.load(str(prepared), load_external_data=False),
                                      settings)
    cache = write_ranges(ranges, folder / "learned-ranges.json")
    cal = CalibratedModel(Artifact("qad-float", "onnx", float_path), prepared, settings,
                     node_groups(exported, settings.op_types, "matmul"), cache, None, False)
    staged = quantize_nodes(cal, folder / "int8" / ONNX_NAME, nodes)
    graph = onnx.load(str(staged))
    if reroute_float_consumers(graph):
        onnx.save(graph, str(staged))
    check_scales(staged, ranges, student)
    return staged


def compare_with_torch(student: TaskModel, tokenizer: Any, path: Path, texts: list[str],
                       data: QuantizeData) -> dict[str, float]:
    """ONNX Runtime (the QDQ file) against the fake-quantized torch model on ``texts``: row cosines, max abs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    cosines, diffs = [], []
    student.eval()
    for batch in text_batches(tokenizer, texts, data.batch_size, data.max_length):
        with torch.inference_mode():
            ref = student(**batch).float().numpy()
        got = session.run(None, {k: v.numpy() for k, v in batch.items() if k in names})[0]
        cosines.append((ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)))
        diffs.append(np.abs(ref - got).max())
    cos = np.concatenate(cosines)
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()), "max_abs": float(max(diffs))}


def scale_drift(student: TaskModel, initial: dict[str, float]) -> dict[str, float]:
    """How far training moved the activation scales from their calibrated values (relative, median and max)."""
    now = {str(i): q.qparams()[0] for i, q in enumerate(fq.input_quantizers(student))}
    rel = np.array([abs(now[k] / initial[k] - 1) for k in initial])
    return {"median": round(float(np.median(rel)), 4), "max": round(float(rel.max()), 4)}


def qad_int8(step: QadInt8, model: Artifact, out: Path, data: QuantizeData | None = None) -> Artifact:
    """Quantization-aware distillation of ``data.qad.student`` into ``out/model.onnx`` (QDQ, learned ranges).

    ``model`` is the float ONNX export of that student: its exporter settings are reused and its
    tokenizer files are copied. Training checkpoints live in ``out/.qad-<key>`` until the stage is done, so an
    interrupted run resumes where it stopped.

    Returns:
        The artifact; ``meta`` holds the settings, the training losses, how far the scales moved and the
        ORT-vs-torch agreement of the written file.
    Raises:
        InputError: not a float ONNX model, no QAD data, too few texts, an unknown exclusion.
        VerificationError: the QDQ file lacks the learned scales, or disagrees with the trained model.
    """
    check_float_model(model)
    data, qad, settings = qad_inputs(step, data)
    texts = calibration_texts(data, settings)
    student, tokenizer = load_task_model(qad.student, model.task)
    quantizers = fake_quantize(student, tokenizer, texts, settings, step.exclude, data)
    initial = {str(i): q.qparams()[0] for i, q in enumerate(fq.input_quantizers(student))}
    work = work_dir(out, step, qad, texts)
    losses = train(student, tokenizer, step, qad, data, work)
    with staging(out) as folder:
        staged = write_qdq(student, tokenizer, model.path, settings, folder)
        check = compare_with_torch(student, tokenizer, staged, (data.eval_texts or texts)[:CHECK_TEXTS], data)
        if check["min_cosine"] < MIN_CHECK_COSINE:
            raise VerificationError(f"QDQ export disagrees with the trained fake-quantized model: min row cosine "
                                    f"{check['min_cosine']:.4f} < {MIN_CHECK_COSINE}")
        meta = {**settings_meta(settings, step), "quantize_linear": check_qdq(staged, model.path),
                "input_quantizers": quantizers, "qad_steps": step.qad_steps, "qad_lr": step.qad_lr,
                "qad_batch_size": step.qad_batch_size, "train_texts": len(qad.texts),
                "losses": [s.name for s in qad.losses], "loss_first": losses[0], "loss_last": losses[-1],
                "loss_last_10": float(np.mean(losses[-10:])), "scale_drift": scale_drift(student, initial),
                "ort_vs_torch": check}
        artifact = publish(staged, out, model, step, meta)
    shutil.rmtree(work, ignore_errors=True)
    return artifact

