"""A TensorRT engine behind the :class:`~edgedistill.engines.base.Session` protocol.

Device buffers are torch CUDA tensors (torch is already a dependency), bound by address with the TensorRT 10
tensor API and run with ``execute_async_v3`` on torch's current stream. The sidecar is checked before the
engine is deserialised, so a mismatch says what was expected instead of failing inside TensorRT.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgedistill.errors import InputError
from edgedistill.trt.builder import import_tensorrt, runtime_info
from edgedistill.trt.sidecar import check_sidecar, read_sidecar

if TYPE_CHECKING:
    import tensorrt as trt


class TrtSession:
    """Session over one TensorRT engine (first optimisation profile)."""

    backend = "tensorrt"

    def __init__(self, engine_path: Path, plugin_library: Path | None = None):
        import tensorrt as trt

        import_tensorrt()
        if not engine_path.is_file():
            raise InputError(f"TensorRT engine not found: {engine_path}")
        check_sidecar(engine_path, read_sidecar(engine_path), runtime_info(plugin_library))
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        if plugin_library is not None:
            self.runtime.get_plugin_registry().load_library(str(plugin_library))
        self.engine: trt.ICudaEngine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise InputError(f"TensorRT could not deserialise {engine_path} (see its log above)")
        self.context: trt.IExecutionContext = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if n not in self.input_names]
        self.path = engine_path

    def dtype(self, name: str) -> Any:
        import tensorrt as trt

        return np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy feeds to the GPU, run, copy outputs back. Extra feeds are ignored.

        Raises:
            InputError: a missing input, or a shape outside the engine's profile.
        """
        import torch

        keep = []  # device tensors must outlive the launch
        for name in self.input_names:
            if name not in feeds:
                raise InputError(f"{self.path}: the engine needs input '{name}', which was not given")
            host = np.ascontiguousarray(feeds[name], dtype=self.dtype(name))
            if not self.context.set_input_shape(name, tuple(host.shape)):
                raise InputError(f"{self.path}: input '{name}' shape {host.shape} is outside the engine's profile")
            device = torch.from_numpy(host).cuda()
            keep.append(device)
            self.context.set_tensor_address(name, device.data_ptr())
        outputs = {}
        for name in self.output_names:
            dims = self.context.get_tensor_shape(name)
            shape = tuple(dims[i] for i in range(len(dims)))
            torch_dtype = torch.from_numpy(np.empty(0, self.dtype(name))).dtype
            outputs[name] = torch.empty(shape, dtype=torch_dtype, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise InputError(f"{self.path}: TensorRT execution failed (see its log above)")
        stream.synchronize()
        return {name: t.cpu().numpy() for name, t in outputs.items()}
