"""How a session is opened: device, execution providers, threads and compilation, in one frozen record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                 "tensorrt": "TensorrtExecutionProvider"}


@dataclass(frozen=True)
class SessionOptions:
    """Options shared by every backend; a backend ignores those that do not apply to it.

    ``threads``/``inter_op_threads`` are pinned (recorded in the results); ``device`` is ``cpu`` or
    ``cuda[:N]``; ``providers`` are ORT execution providers by short name (cpu, cuda, tensorrt) in
    priority order; ``compile`` wraps a torch model in ``torch.compile``; ``cuda_graphs`` captures the
    torch forward in a CUDA graph per input shape.
    """

    threads: int | None = None
    inter_op_threads: int = 1
    device: str = "cpu"
    providers: tuple[str, ...] = ("cpu",)
    compile: bool = False
    cuda_graphs: bool = False

    def with_threads(self, threads: int | None) -> SessionOptions:
        return self if threads is None else dataclasses.replace(self, threads=threads)

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda") or any(p != "cpu" for p in self.providers)
