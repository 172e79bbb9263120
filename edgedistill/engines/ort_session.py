"""An ONNX file run by ONNX Runtime on the CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgedistill.errors import InputError


def shape_mismatch(name: str, expected: list[object], got: tuple[int, ...]) -> str | None:
    """Describe how ``got`` violates the fixed (integer) dimensions of ``expected``, or None if it fits."""
    if len(expected) != len(got):
        return f"input '{name}' has {len(got)} dimensions, the model expects {len(expected)}"
    for axis, (want, have) in enumerate(zip(expected, got, strict=True)):
        if isinstance(want, int) and want != have:
            return (f"input '{name}' has size {have} on axis {axis}, but the model is fixed to {want} "
                    f"(shape {expected}); re-export with dynamic axes or use a matching shape")
    return None


class OrtSession:
    """Session over ``onnxruntime.InferenceSession`` with all graph optimisations and fixed threads."""

    backend = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        if not path.is_file():
            raise InputError(f"ONNX model not found: {path}")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if threads is not None:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT raises its own classes (InvalidProtobuf, Fail, ...) not derived from one base
            raise InputError(f"{path} is not a loadable ONNX model: {str(err).splitlines()[0]}") from None
        self.path = path
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
