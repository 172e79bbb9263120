"""Static INT8 in QDQ format, the primitives: calibrating a model and writing it with chosen nodes quantized.

Calibration runs once per model, text set and method (its ranges are cached, see :mod:`calibration`);
every later quantization — a plain run, each probe of the sensitivity analysis, each step of the
budget search — reuses the ranges and only rewrites the graph. The modes that use them are
:mod:`static_int8`, :mod:`trt_qdq` and :mod:`qad`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from edgedistill.artifacts import Artifact
from edgedistill.config import Calibrated
from edgedistill.engines.tokenizer import load_preprocessor
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import onnx_io
from edgedistill.quantize.calibration import SampleBatches, cache_key, calibration_texts, calibrator_options
from edgedistill.quantize.common import (
    ONNX_NAME,
    is_large,
    prepare,
    without_fast_path,
)
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.groups import NodeGroup, node_groups
from edgedistill.quantize.presets import StaticSettings
from edgedistill.tasks import get_task


@dataclass
class CalibratedModel:
    """A pre-processed float model, its quantizable groups, and the calibration that fits it."""

    model: Artifact
    prepared: Path
    settings: StaticSettings
    groups: list[NodeGroup]
    cache: Path
    reader: SampleBatches | None
    large: bool

    @property
    def all_nodes(self) -> set[str]:
        return {n for g in self.groups for n in g.nodes}


def calibrate(model: Artifact, folder: Path, settings: StaticSettings, data: QuantizeData | None,
              group_by: str = "matmul") -> CalibratedModel:
    """Pre-process ``model`` into ``folder`` and set up its calibration (ranges are computed on first use)."""
    task = get_task(model.task)
    texts = calibration_texts(data, settings, task.modality)
    plain = without_fast_path(model.path, folder)
    prepared = prepare(plain, folder / "prepared" / ONNX_NAME)
    source = onnx.load(str(plain), load_external_data=False)  # keeps the exporter's module names
    groups = node_groups(source, settings.op_types, group_by)
    cache_dir = (data.cache_dir if data and data.cache_dir else folder.parent / "calibration")
    cache = cache_dir / f"{settings.calibration}-{cache_key(prepared, texts, settings)}.json"
    reader = None
    if not cache.is_file():
        inputs = [name for name, _, _ in onnx_io(prepared)[0]]
        reader = SampleBatches(task, load_preprocessor(model), texts, inputs,
                               data.batch_size if data else 32, data.max_length if data else 128,
                               same_shape=settings.calibration != "minmax")
    return CalibratedModel(model, prepared, settings, groups, cache, reader, is_large(model.path))


def extra_options(settings: StaticSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"ActivationSymmetric": settings.symmetric_activations, "WeightSymmetric": True}
    if not settings.quantize_outputs:
        options["OpTypesToExcludeOutputQuantization"] = list(settings.op_types)
    if settings.weight_qdq_pair:
        options |= {"AddQDQPairToWeight": True, "DedicatedQDQPair": True}
    return options | calibrator_options(settings)[1]


def quantize_nodes(cal: CalibratedModel, dest: Path, nodes: set[str]) -> Path:
    """Write ``cal``'s model with exactly ``nodes`` quantized (QDQ) to ``dest``; no nodes → the float model."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    dest.parent.mkdir(parents=True, exist_ok=True)
    if not nodes:
        shutil.copyfile(cal.prepared, dest)  # ORT reads an empty nodes_to_quantize as "all nodes"
        return dest
    s = cal.settings
    activation = QuantType.QInt8 if s.symmetric_activations else QuantType.QUInt8
    quantize_static(
        cal.prepared, dest, cal.reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(s.op_types),
        per_channel=s.per_channel, reduce_range=s.reduce_range, activation_type=activation,
        weight_type=QuantType.QInt8, nodes_to_quantize=sorted(nodes), use_external_data_format=cal.large,
        calibrate_method=calibrator_options(s)[0], extra_options=extra_options(s), calibration_cache_path=cal.cache,
    )
    cal.reader = None  # the ranges are cached now
    return dest


def check_qdq(path: Path, source: Path) -> int:
    """Number of QuantizeLinear nodes in ``path``; InputError when there are none."""
    count = sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path), load_external_data=False).graph.node)
    if not count:
        raise InputError(f"{source}: static INT8 quantized no node; check quantize.exclude and the op types")
    return count


def settings_meta(settings: StaticSettings, step: Calibrated) -> dict[str, Any]:
    return {"preset": getattr(step, "preset", None), "calibration": settings.calibration,
            "per_channel": settings.per_channel,
            "reduce_range": settings.reduce_range, "symmetric_activations": settings.symmetric_activations,
            "calibration_size": settings.calibration_size, "excluded": list(step.exclude)}
