"""Export a :class:`TaskModel` (backbone + task head) to ONNX; its Task says what goes in and out.

The default exporter is dynamo (``torch.export``) with named dynamic axes (batch and sequence for text, batch for
images) and the onnxscript optimizer (``optimize=True``) for graph clean-up; ``exporter: torchscript`` uses the
legacy tracer and the same optimizer afterwards. The graph is written atomically, with its weights beside it above
2 GB; :mod:`edgedistill.export.verify` proves it against torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import onnx_ir as ir
import torch

from edgedistill.artifacts import sha256_path, staging_dir
from edgedistill.config import ExportConfig, Range
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import EXTERNAL_DATA_BYTES, publish_onnx
from edgedistill.models.task_model import FORWARD_INPUTS, TaskModel
from edgedistill.tasks.classification import LABELS_KEY, ClassificationMetrics, label_names


def check_sequence_range(model: TaskModel, cfg: ExportConfig) -> None:
    """Raise InputError if a text export's sequence range exceeds the model's position embeddings."""
    limit = getattr(model.backbone.config, "max_position_embeddings", None)
    if model.spec.modality == "text" and limit is not None and cfg.dynamic.sequence.max > limit:
        raise InputError(
            f"export.dynamic.sequence.max {cfg.dynamic.sequence.max} exceeds the model's "
            f"max_position_embeddings {limit}; set it to {limit} or less"
        )


def export_metadata(model: TaskModel, preprocessor: Any, cfg: ExportConfig, source: Path | None) -> dict[str, str]:
    """The ``metadata_props`` written into the ONNX file: the task, its inputs and outputs and their ranges."""
    try:
        version = metadata.version("edgedistill")
    except metadata.PackageNotFoundError:
        version = "unknown"
    meta = {"edgedistill.version": version, "edgedistill.task": model.task,
            "edgedistill.inputs": ",".join(model.input_names), "edgedistill.outputs": model.output_name,
            "edgedistill.exporter": cfg.exporter,
            **model.spec.export_metadata(model.input_spec(preprocessor), cfg.dynamic)}
    if isinstance(model.spec, ClassificationMetrics) and (names := label_names(model.backbone.config)):
        meta[LABELS_KEY] = json.dumps(names)
    if source is not None:
        meta["edgedistill.source_sha256"] = sha256_path(source)
    return meta


def export_onnx(model: TaskModel, preprocessor: Any, cfg: ExportConfig, out_file: Path,
                source: Path | None = None) -> None:
    """Export ``model`` to ``out_file`` (written atomically; weights go to ``<name>.data`` above 2 GB).

    Args:
        model: the task model, in eval mode, on CPU.
        preprocessor: its tokenizer or image processor.
        cfg: opset, exporter and dynamic ranges.
        out_file: the ``.onnx`` file to write.
        source: the model folder, hashed into the metadata when given.
    Raises:
        InputError: the sequence range exceeds the model's position embeddings, or the dynamo
            exporter cannot trace the model.
    """
    check_sequence_range(model, cfg)
    feeds = model.spec.example_feeds(model, preprocessor, cfg.dynamic)
    inputs = {name: torch.from_numpy(feeds[name]) for name in model.input_names}
    meta = export_metadata(model, preprocessor, cfg, source)
    with staging_dir(out_file.parent, out_file.name) as staging:
        export = export_dynamo if cfg.exporter == "dynamo" else export_torchscript
        graph = export(model, inputs, cfg, staging)
        graph.metadata_props.update(meta)
        save_ir(graph, staging / out_file.name)
        publish_onnx(staging / out_file.name, out_file)


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


def export_dynamo(model: TaskModel, inputs: dict[str, torch.Tensor], cfg: ExportConfig, staging: Path) -> ir.Model:
    """``torch.export`` based export; returns the optimised graph in memory.

    Named ``Dim``s with min 1 work here (torch 2.13): the graph stays symbolic, and verification runs
    batch 1 and the shortest sequence to prove it.
    """
    axes = {axis: dim(name, rng) for axis, (name, rng) in model.spec.export_axes(cfg.dynamic).items()}
    try:
        with quiet_exporter():
            program = torch.onnx.export(
                model, (), kwargs=inputs, dynamo=True, opset_version=opset_of(cfg), input_names=list(inputs),
                output_names=[model.output_name], dynamic_shapes={name: axes for name in inputs}, optimize=True,
                verbose=False,
            )
    except torch.onnx.OnnxExporterError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"dynamo export failed: {reason}; try `export.exporter: torchscript`") from err
    assert program is not None
    return program.model


def export_torchscript(model: TaskModel, inputs: dict[str, torch.Tensor], cfg: ExportConfig,
                       staging: Path) -> ir.Model:
    """Legacy tracer export, then the onnxscript optimizer; returns the graph in memory."""
    import onnxscript.optimizer

    axes = {axis: name for axis, (name, rng) in model.spec.export_axes(cfg.dynamic).items() if rng.min != rng.max}
    names = list(inputs)
    dynamic_axes = {**dict.fromkeys(names, axes), model.output_name: {0: "batch"} if 0 in axes else {}}
    args = tuple(inputs.get(name) for name in FORWARD_INPUTS[: max(FORWARD_INPUTS.index(n) for n in names) + 1])
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
