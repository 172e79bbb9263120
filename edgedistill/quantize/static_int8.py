"""Static INT8 QDQ of a float ONNX model: calibrate, then quantize every group the budget lets go (all of them
without a budget), vet and publish. TensorRT's explicit INT8 (:mod:`trt_qdq`) is this with TensorRT's settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.config import Calibrated
from edgedistill.quantize.budget import search
from edgedistill.quantize.common import ONNX_NAME, check_float_model, publish, staging
from edgedistill.quantize.data import QuantizeData
from edgedistill.quantize.groups import excluded_nodes
from edgedistill.quantize.presets import StaticSettings, resolve
from edgedistill.quantize.static import calibrate, check_qdq, quantize_nodes, settings_meta


def static_int8(step: Calibrated, model: Artifact, out: Path, data: QuantizeData | None = None,
                settings: StaticSettings | None = None, finish: Callable[[Path], None] | None = None) -> Artifact:
    """Static INT8 QDQ quantization of ``model`` into ``out/model.onnx`` (with a budget search if asked).

    Returns:
        The artifact; ``meta`` holds the resolved settings, the groups kept in float and, with a budget
        or ``sensitivity``, the search's record (also written as ``out/sensitivity.{json,md,png}``).
    ``settings`` replaces the step's; ``finish`` fixes up and vets the result before it is published.
    Raises:
        InputError: not a float ONNX model, too few calibration texts, unknown exclusions, nothing quantized.
    """
    check_float_model(model)
    settings = settings or resolve(step)
    with staging(out) as folder:
        cal = calibrate(model, folder, settings, data, step.group_by)
        excluded = excluded_nodes(cal.groups, step.exclude)
        if step.budget is not None or step.sensitivity:
            staged, record = search(cal, step, data, folder, out, excluded)
        else:
            staged, record = quantize_nodes(cal, folder / "int8" / ONNX_NAME, cal.all_nodes - excluded), {}
        if finish is not None:
            finish(staged)
        meta = {**settings_meta(settings, step), "quantize_linear": check_qdq(staged, model.path), **record}
        return publish(staged, out, model, step, meta)
