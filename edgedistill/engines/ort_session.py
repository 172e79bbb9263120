"""An ONNX file run by ONNX Runtime on the CPU, CUDA or TensorRT execution provider."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.engines.options import ORT_PROVIDERS, SessionOptions
from edgedistill.errors import InputError, MissingDependencyError


def shape_mismatch(name: str, expected: list[object], got: tuple[int, ...]) -> str | None:
    """Describe how ``got`` violates the fixed (integer) dimensions of ``expected``, or None if it fits."""
    if len(expected) != len(got):
        return f"input '{name}' has {len(got)} dimensions, the model expects {len(expected)}"
    for axis, (want, have) in enumerate(zip(expected, got, strict=True)):
        if isinstance(want, int) and want != have:
            return (f"input '{name}' has size {have} on axis {axis}, but the model is fixed to {want} "
                    f"(shape {expected}); re-export with dynamic axes or use a matching shape")
    return None


def provider_list(names: tuple[str, ...], available: list[str]) -> list[str]:
    """ORT provider names for short names, CPU appended as fallback.

    Raises:
        MissingDependencyError: a requested provider is not in this onnxruntime build (says what to install).
    """
    out = []
    for short in names:
        if short not in ORT_PROVIDERS:
            raise InputError(f"unknown execution provider '{short}'; expected one of: {', '.join(ORT_PROVIDERS)}")
        full = ORT_PROVIDERS[short]
        if full not in available:
            raise MissingDependencyError(
                f"onnxruntime has no {full} here (available: {', '.join(available)}); "
                f"install onnxruntime-gpu{' and TensorRT' if short == 'tensorrt' else ''} for provider '{short}'")
        out.append(full)
    return out if "CPUExecutionProvider" in out else [*out, "CPUExecutionProvider"]


def session_options(threads: int | None, inter_op_threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = inter_op_threads
    return opts


class OrtSession:
    """Session over ``onnxruntime.InferenceSession`` with all graph optimisations and pinned threads."""

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None, options: SessionOptions | None = None):
        import onnxruntime as ort

        opts = options or SessionOptions()
        if not path.is_file():
            raise InputError(f"ONNX model not found: {path}")
        providers = provider_list(opts.providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads, opts.inter_op_threads),
                                                providers=providers)
        except Exception as err:  # ORT raises its own classes (InvalidProtobuf, Fail, ...) not derived from one base
            raise InputError(f"{path} is not a loadable ONNX model: {str(err).splitlines()[0]}") from None
        self.path = path
        self.providers = self.session.get_providers()
        self.threads = {"intra_op": threads, "inter_op": opts.inter_op_threads}
        self.device = "cuda" if self.providers[0] != "CPUExecutionProvider" else "cpu"
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}
        self.input_names = list(self.input_shapes)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        """Raise InputError if an input is missing or a feed violates the model's fixed dimensions."""
        for name, expected in self.input_shapes.items():
            if name not in feeds:
                raise InputError(f"{self.path}: the model needs input '{name}', which was not given")
            problem = shape_mismatch(name, expected, tuple(np.shape(feeds[name])))
            if problem:
                raise InputError(f"{self.path}: {problem}")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds are filtered to the model's inputs, so extra ones (e.g. ``token_type_ids``) are harmless.

        Raises:
            InputError: a missing input or a shape outside the model's fixed dimensions.
        """
        inputs = {name: feeds[name] for name in self.input_names if name in feeds}
        try:
            outputs = self.session.run(None, inputs)
        except Exception as err:
            # checked only on failure so the timed path stays as lean as ORT itself
            self.check_feeds(feeds)
            raise InputError(f"{self.path}: ONNX Runtime failed: {str(err).splitlines()[0]}") from None
        return dict(zip(self.output_names, outputs, strict=True))

    def timed_run(self, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """One call with host-to-device, compute and device-to-host timed apart (seconds), via IO binding.

        On the CPU provider the copies are no-ops and ``compute_s`` is the whole call.
        """
        import onnxruntime as ort

        binding = self.session.io_binding()
        t0 = time.perf_counter()
        for name in self.input_names:
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(feeds[name], self.device, 0))
        for name in self.output_names:
            binding.bind_output(name, self.device)
        t1 = time.perf_counter()
        self.session.run_with_iobinding(binding)  # returns once the device has finished
        t2 = time.perf_counter()
        outputs = binding.copy_outputs_to_cpu()
        t3 = time.perf_counter()
        parts = {"h2d_s": t1 - t0, "compute_s": t2 - t1, "d2h_s": t3 - t2}
        return dict(zip(self.output_names, outputs, strict=True)), parts
