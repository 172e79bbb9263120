"""Export a :class:`TaskModel` (encoder + head) to ONNX and verify it against torch.

The default exporter is dynamo (``torch.export``) with named dynamic batch and sequence axes and the
onnxscript optimizer (``optimize=True``) for graph clean-up; ``exporter: torchscript`` uses the legacy
tracer and the same optimizer afterwards. Verification runs the file in ONNX Runtime (CPU) and the module
in torch on the same inputs — the shortest, a middle and the longest exported sequence, a single row and a
padding-heavy batch — and fails the export if they disagree beyond ``atol`` / ``min_cosine``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import torch

from edgedistill.artifacts import Artifact, atomic_write_json, sha256_path
from edgedistill.config import DynamicAxes, ExportConfig, Range
from edgedistill.errors import InputError, VerificationError
from edgedistill.models.onnx_file import onnx_size_mb, publish_onnx, remove_onnx
from edgedistill.models.task_model import TaskModel, load_task_model
from edgedistill.models.tokenizer_files import copy_tokenizer_files

ONNX_NAME = "model.onnx"
VERIFICATION_NAME = "verification.json"
BISECT_NAME = "bisect.json"
FORWARD_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # TaskModel.forward order
EXTERNAL_DATA_BYTES = 2 * 1024**3 - 64 * 1024**2  # protobuf's 2 GB limit, with room for the graph
VERIFY_MAX_SEQ = 256  # longer sequences are exported but not run at verification (speed)
PADDED_BATCH = 4
SAMPLE_TEXTS = (
    "A man is playing a guitar on the street.",
    "The quick brown fox jumps over the lazy dog.",
    "Returns a list of the values in the module, sorted by name.",
    "Hi",
    "Two young children are playing in the park with a red ball while their parents watch from a bench.",
    "Error: the file could not be opened.",
)


def input_names(tokenizer: Any) -> list[str]:
    """The model inputs the tokenizer produces, in ``TaskModel.forward`` order (ids and mask always)."""
    wanted = set(getattr(tokenizer, "model_input_names", ())) | {"input_ids", "attention_mask"}
    return [name for name in FORWARD_INPUTS if name in wanted]


def check_sequence_range(model: TaskModel, cfg: ExportConfig) -> None:
    """Raise InputError if the exported sequence range exceeds the model's position embeddings."""
    limit = getattr(model.backbone.config, "max_position_embeddings", None)
    if limit is not None and cfg.dynamic.sequence.max > limit:
        raise InputError(
            f"export.dynamic.sequence.max {cfg.dynamic.sequence.max} exceeds the model's "
            f"max_position_embeddings {limit}; set it to {limit} or less"
        )


def clamp(value: int, rng: Range) -> int:
    return max(rng.min, min(value, rng.max))


def example_inputs(tokenizer: Any, names: list[str], dynamic: DynamicAxes) -> tuple[torch.Tensor, ...]:
    """Inputs to trace with: batch 2 and sequence 8 where the range allows (sizes 0 and 1 get specialised)."""
    batch, seq = clamp(2, dynamic.batch), clamp(8, dynamic.sequence)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(tokenizer), (batch, seq), generator=gen)
    tensors = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    return tuple(tensors[name] for name in names)


def export_metadata(model: TaskModel, names: list[str], cfg: ExportConfig, source: Path | None) -> dict[str, str]:
    """The ``metadata_props`` written into the ONNX file."""
    try:
        version = metadata.version("edgedistill")
    except metadata.PackageNotFoundError:
        version = "unknown"
    meta = {
        "edgedistill.version": version,
        "edgedistill.task": model.task,
        "edgedistill.inputs": ",".join(names),
        "edgedistill.outputs": model.output_name,
        "edgedistill.max_length": str(cfg.dynamic.sequence.max),
        "edgedistill.batch_range": f"{cfg.dynamic.batch.min},{cfg.dynamic.batch.max}",
        "edgedistill.sequence_range": f"{cfg.dynamic.sequence.min},{cfg.dynamic.sequence.max}",
        "edgedistill.exporter": cfg.exporter,
    }
    if source is not None:
        meta["edgedistill.source_sha256"] = sha256_path(source)
    return meta


def export_onnx(
    model: TaskModel, tokenizer: Any, cfg: ExportConfig, out_file: Path, source: Path | None = None
) -> None:
    """Export ``model`` to ``out_file`` (written atomically; weights go to ``<name>.data`` above 2 GB).

    Args:
        model: the task model, in eval mode, on CPU.
        tokenizer: its tokenizer (decides which inputs the graph takes).
        cfg: opset, exporter and dynamic ranges.
        out_file: the ``.onnx`` file to write.
        source: the model folder, hashed into the metadata when given.
    Raises:
        InputError: the sequence range exceeds the model's position embeddings, or the dynamo
            exporter cannot trace the model.
    """
    check_sequence_range(model, cfg)
    names = input_names(tokenizer)
    args = example_inputs(tokenizer, names, cfg.dynamic)
    meta = export_metadata(model, names, cfg, source)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_file.name}.", dir=out_file.parent))
    try:
        export = export_dynamo if cfg.exporter == "dynamo" else export_torchscript
        graph = export(model, args, names, cfg, staging)
        graph.metadata_props.update(meta)
        save_ir(graph, staging / out_file.name)
        publish_onnx(staging / out_file.name, out_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def opset_of(cfg: ExportConfig) -> int:
    """The configured opset; ``auto`` here (no deployment known) means ONNX Runtime's."""
    if cfg.opset == "auto":
        from edgedistill.export.opset import opset_for

        return opset_for("ort")
    return cfg.opset


def dim(name: str, rng: Range) -> torch.export.Dim | None:
    """A named dynamic dimension, or None (static) when the range is a single size."""
    return None if rng.min == rng.max else torch.export.Dim(name, min=rng.min, max=rng.max)


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence exporter noise: missing torchvision ops, axis renames, and the tracer's generic cautions.

    The tracer warnings ("might not generalize", negative indices) are dropped because verification
    runs the exported graph at several shapes against torch, which is the check that settles them.
    """
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name: .* will not be used")
            warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", message=r"Exporting aten::index operator")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def export_dynamo(
    model: TaskModel, args: tuple[torch.Tensor, ...], names: list[str], cfg: ExportConfig, staging: Path
) -> ir.Model:
    """``torch.export`` based export; returns the optimised graph in memory.

    Named ``Dim``s with min 1 work here (torch 2.13): the graph stays symbolic, and verification runs
    batch 1 and the shortest sequence to prove it.
    """
    axes = {0: dim("batch", cfg.dynamic.batch), 1: dim("sequence", cfg.dynamic.sequence)}
    try:
        with quiet_exporter():
            program = torch.onnx.export(
                model, args, dynamo=True, opset_version=opset_of(cfg), input_names=names,
                output_names=[model.output_name], dynamic_shapes=tuple(axes for _ in names), optimize=True,
                verbose=False,
            )
    except torch.onnx.OnnxExporterError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"dynamo export failed: {reason}; try `export.exporter: torchscript`") from err
    assert program is not None
    return program.model


def export_torchscript(
    model: TaskModel, args: tuple[torch.Tensor, ...], names: list[str], cfg: ExportConfig, staging: Path
) -> ir.Model:
    """Legacy tracer export, then the onnxscript optimizer; returns the graph in memory."""
    import onnxscript.optimizer

    axes = {}
    if cfg.dynamic.batch.min != cfg.dynamic.batch.max:
        axes[0] = "batch"
    if cfg.dynamic.sequence.min != cfg.dynamic.sequence.max:
        axes[1] = "sequence"
    dynamic_axes = {**dict.fromkeys(names, axes), model.output_name: {0: "batch"} if 0 in axes else {}}
    raw = staging / "raw" / "traced.onnx"
    raw.parent.mkdir()
    with quiet_exporter():
        torch.onnx.export(
            model, args, str(raw), dynamo=False, opset_version=opset_of(cfg), input_names=names,
            output_names=[model.output_name], dynamic_axes=dynamic_axes,
        )
    graph = ir.load(raw)
    onnxscript.optimizer.optimize(graph)
    return graph


def save_ir(graph: ir.Model, path: Path) -> None:
    """Save ``graph``; above 2 GB of weights they go to ``<name>.data`` beside it."""
    size = sum(v.const_value.nbytes for v in graph.graph.initializers.values() if v.const_value is not None)
    if size > EXTERNAL_DATA_BYTES:
        ir.save(graph, path, external_data=f"{path.name}.data")
    else:
        ir.save(graph, path)


# ---------------------------------------------------------------- verification


def verification_lengths(sequence: Range) -> list[int]:
    """Shortest, middle and longest sequence to verify (the longest capped at VERIFY_MAX_SEQ)."""
    top = max(sequence.min, min(sequence.max, VERIFY_MAX_SEQ))
    return sorted({sequence.min, (sequence.min + top) // 2, top})


def make_row(tokenizer: Any, text: str, length: int, filler: np.ndarray) -> list[int]:
    """Token ids of exactly ``length``: the tokenised text, cut or filled with ``filler`` ids before its last token."""
    ids: list[int] = tokenizer(text, truncation=True, max_length=max(length, 2))["input_ids"]
    if length <= 1:
        return ids[:length]
    if len(ids) >= length:
        return ids[: length - 1] + ids[-1:]
    return ids[:-1] + filler[: length - len(ids)].tolist() + ids[-1:]


def make_batch(tokenizer: Any, names: list[str], lengths: list[int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A right-padded batch with one row per entry of ``lengths`` (width = the longest)."""
    special = set(tokenizer.all_special_ids)
    allowed = np.array([i for i in range(len(tokenizer)) if i not in special])
    width = max(lengths)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.full((len(lengths), width), pad, dtype=np.int64)  # (B, S)
    mask = np.zeros_like(ids)
    for i, length in enumerate(lengths):
        row = make_row(tokenizer, SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)], length, rng.choice(allowed, size=width))
        ids[i, :length], mask[i, :length] = row, 1
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {name: feeds[name] for name in names}


def verification_batches(
    tokenizer: Any, names: list[str], dynamic: DynamicAxes
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """``(label, feeds)`` per shape: full single rows, and padding-heavy batches of very different lengths."""
    rng = np.random.default_rng(0)
    single, padded = clamp(1, dynamic.batch), clamp(PADDED_BATCH, dynamic.batch)
    batches = []
    for seq in verification_lengths(dynamic.sequence):
        batches.append([seq] * single)
        if padded > 1 and seq > dynamic.sequence.min:
            # rows from the shortest allowed length up to `seq`: most of the batch is padding
            batches.append(np.linspace(dynamic.sequence.min, seq, padded).round().astype(int).tolist()[::-1])
    return [(f"{len(b)}x{max(b)}", make_batch(tokenizer, names, b, rng)) for b in batches]


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """max_abs, max_rel (max abs diff over the largest |ref|) and the smallest row cosine of (B, D) outputs."""
    diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    scale = max(float(np.abs(ref).max()), 1e-12)
    dot = (ref * got).sum(axis=-1, dtype=np.float64)
    norms = np.linalg.norm(ref, axis=-1) * np.linalg.norm(got, axis=-1)
    cosine = dot / np.maximum(norms, 1e-12)
    return {"max_abs": float(diff.max()), "max_rel": float(diff.max() / scale), "min_cosine": float(cosine.min())}


def torch_outputs(model: TaskModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.inference_mode():
        out = model(**{name: torch.from_numpy(value) for name, value in feeds.items()})
    return {model.output_name: out.float().numpy()}


def measure_onnx(model: TaskModel, tokenizer: Any, onnx_path: Path, cfg: ExportConfig) -> dict[str, Any]:
    """Run ONNX Runtime (CPU) and torch on the verification batches and compare every output.

    Returns:
        A JSON-serialisable report: tolerances, per output and shape the differences, the worst
        values, and ``passed``.
    Raises:
        VerificationError: the ONNX model lacks an input or output the model has.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    graph_inputs = [i.name for i in session.get_inputs()]
    names = input_names(tokenizer)
    if missing := set(graph_inputs) - set(names):
        raise VerificationError(f"{onnx_path}: ONNX inputs {sorted(missing)} are not produced by the tokenizer")
    output_names = [o.name for o in session.get_outputs()]
    results = []
    for label, feeds in verification_batches(tokenizer, names, cfg.dynamic):
        got = dict(zip(output_names, session.run(None, {n: feeds[n] for n in graph_inputs}), strict=True))
        for name, ref in torch_outputs(model, feeds).items():
            if name not in got:
                raise VerificationError(f"{onnx_path}: no output '{name}' (has {output_names}); re-export the model")
            results.append({"output": name, "shape": label, **compare(ref, got[name])})
    return summarise(results, cfg)


def shape_key(label: str) -> tuple[int, ...]:
    """``"4x128"`` or ``"4x3x224x224"`` → its sizes, for sorting labels numerically."""
    return tuple(int(p) for p in label.split()[0].split("x") if p.isdigit())


def summarise(results: list[dict[str, Any]], cfg: ExportConfig) -> dict[str, Any]:
    for r in results:
        r["passed"] = r["max_abs"] <= cfg.atol and r["min_cosine"] >= cfg.min_cosine
    return {
        "atol": cfg.atol,
        "min_cosine": cfg.min_cosine,
        "provider": "CPUExecutionProvider",
        "results": results,
        "worst": {
            "max_abs": max(r["max_abs"] for r in results),
            "max_rel": max(r["max_rel"] for r in results),
            "min_cosine": min(r["min_cosine"] for r in results),
        },
        "shapes": sorted({r["shape"] for r in results}, key=shape_key),
        "passed": all(r["passed"] for r in results),
    }


def check_report(report: dict[str, Any], hint: str | None = None) -> None:
    """Raise VerificationError naming the worst failing output and shape, if any failed (``hint`` appended)."""
    failed = [r for r in report["results"] if not r["passed"]]
    if not failed:
        return
    r = max(failed, key=lambda r: (r["max_abs"] / report["atol"], report["min_cosine"] - r["min_cosine"]))
    if r["max_abs"] > report["atol"]:
        why = f"max abs diff {r['max_abs']:.1e} > atol {report['atol']:g} (min cosine {r['min_cosine']:.4f})"
    else:
        why = f"min row cosine {r['min_cosine']:.6f} < {report['min_cosine']:g} (max abs diff {r['max_abs']:.1e})"
    raise VerificationError(f"output '{r['output']}' at shape {r['shape']}: {why}" + (f"; {hint}" if hint else ""))


def verify_onnx(model: TaskModel, tokenizer: Any, onnx_path: Path, cfg: ExportConfig) -> dict[str, Any]:
    """Compare ONNX Runtime against torch (see :func:`measure_onnx`) and fail beyond tolerance.

    Returns:
        The report of :func:`measure_onnx`.
    Raises:
        VerificationError: an output differs by more than ``cfg.atol`` or a row cosine is below
            ``cfg.min_cosine`` at some shape (the message names the worst one).
    """
    report = measure_onnx(model, tokenizer, onnx_path, cfg)
    check_report(report)
    return report


# ---------------------------------------------------------------- stage


def run(cfg: ExportConfig, model: Artifact, out: Path, bisect: bool = False) -> Artifact:
    """Export a Hugging Face model folder to ``out/model.onnx``, verified, with its tokenizer files.

    ``out/verification.json`` is written whether or not verification passes; ``out/model.onnx`` only
    appears once it has passed. With ``bisect``, ``out/bisect.json`` compares every module's output with
    torch (see :func:`edgedistill.export.bisect.bisect_onnx`) and a failure names the first module that differs.

    Returns:
        The ONNX artifact; ``meta`` holds the verification summary, export time and size (and the bisect line).
    Raises:
        InputError: ``model`` is not a loadable Hugging Face folder or the config does not fit it.
        VerificationError: ONNX Runtime disagrees with torch beyond tolerance.
    """
    if model.kind != "hf":
        raise InputError(f"export takes a Hugging Face model folder; '{model.name}' is a {model.kind} artifact")
    task_model, tokenizer = load_task_model(model.path, model.task)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export.", dir=out))
    bisected = None
    try:
        start = time.perf_counter()
        export_onnx(task_model, tokenizer, cfg, staging / ONNX_NAME, source=model.path)
        export_s = time.perf_counter() - start
        report = measure_onnx(task_model, tokenizer, staging / ONNX_NAME, cfg)
        atomic_write_json(out / VERIFICATION_NAME, report)
        if bisect:
            bisected = bisect_file(task_model, tokenizer, staging / ONNX_NAME, cfg, out / BISECT_NAME)
        if not report["passed"]:
            remove_onnx(out / ONNX_NAME)  # a stale model from an earlier run must not pass for this one
            check_report(report, hint=bisected or "rerun with --bisect to find the first module that differs")
        publish_onnx(staging / ONNX_NAME, out / ONNX_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    copy_tokenizer_files(model.path, out)
    summary = {k: report[k] for k in ("passed", "worst", "shapes", "atol", "min_cosine")}
    meta = {"verification": summary, "export_s": round(export_s, 2), "size_mb": onnx_size_mb(out / ONNX_NAME)}
    if bisected:
        meta["bisect"] = bisected
    return Artifact(name=f"{model.name}-onnx", kind="onnx", path=out / ONNX_NAME, task=model.task, meta=meta)


def bisect_file(model: TaskModel, tokenizer: Any, onnx_path: Path, cfg: ExportConfig, report_path: Path) -> str:
    """Bisect ``onnx_path`` against ``model``, write the report to ``report_path``; returns its one-line summary."""
    from edgedistill.export.bisect import bisect_onnx, describe

    report = bisect_onnx(model, tokenizer, onnx_path, cfg)
    atomic_write_json(report_path, report)
    return describe(report)
