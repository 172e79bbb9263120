"""A Hugging Face model folder run by torch: eager or ``torch.compile``, on the CPU or a CUDA device."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgedistill.engines.options import SessionOptions
from edgedistill.errors import MissingDependencyError
from edgedistill.models.task_model import count_parameters, load_task_model


def model_dtype(array: np.ndarray) -> np.ndarray:
    """Token inputs as int64, pixels as float32 (what the model's embeddings take)."""
    array = np.asarray(array)
    return array.astype(np.float32 if np.issubdtype(array.dtype, np.floating) else np.int64, copy=False)


def pin_torch_threads(threads: int | None, inter_op: int) -> None:
    """Set torch's (process-wide) intra-op threads, and inter-op threads where torch still allows it."""
    if threads is not None:
        torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # settable only before the first parallel work; what is used is recorded
        torch.set_num_interop_threads(inter_op)


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MissingDependencyError(f"device '{device}' needs a CUDA build of torch and a visible GPU; "
                                     "install torch with CUDA (https://pytorch.org/get-started) or use device cpu")


class TorchSession:
    """Session over :class:`TaskModel`; ``threads`` sets torch's (process-wide) intra-op thread count."""

    backend = "torch"

    def __init__(self, path: Path, task: str, threads: int | None = None, options: SessionOptions | None = None):
        opts = options or SessionOptions()
        check_device(opts.device)
        pin_torch_threads(threads, opts.inter_op_threads)
        self.threads = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
        self.model, self.tokenizer = load_task_model(path, task)
        self.device = opts.device
        self.model.to(self.device)
        self.forward: Any = torch.compile(self.model) if opts.compile else self.model
        self.input_names = self.model.input_names
        self.output_names = [self.model.output_name]
        self.graphs: dict[tuple[int, ...], Any] = {}
        self.cuda_graphs = opts.cuda_graphs and self.device.startswith("cuda")

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def to_device(self, feeds: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(model_dtype(feeds[name])).to(self.device, non_blocking=True)
                for name in self.input_names if name in feeds}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Feeds are token ids (B, S) or pixels (B, C, H, W); names the model does not take are ignored."""
        inputs = self.to_device(feeds)
        with torch.inference_mode():
            out = self.forward(**inputs)  # (B, D)
        return {self.output_names[0]: out.cpu().numpy()}

    def timed_run(self, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """One call with H2D, compute and D2H timed apart (seconds) by CUDA events, as trtexec does.

        On the CPU everything is compute and the copies are zero.
        """
        if not self.device.startswith("cuda"):
            import time

            t0 = time.perf_counter()
            out = self.run(feeds)
            return out, {"h2d_s": 0.0, "compute_s": time.perf_counter() - t0, "d2h_s": 0.0}
        from edgedistill.engines.cuda_timing import timed_cuda_call

        return timed_cuda_call(self, feeds)
