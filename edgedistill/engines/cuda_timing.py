"""CUDA-event timing of a torch session: host-to-device, compute and device-to-host apart; optional CUDA graphs.

Events are recorded on the current stream around each phase and read after one synchronize, so the
host's Python overhead does not count as GPU time (trtexec's "GPU compute time"). With CUDA graphs the
forward is captured once per input shape on static buffers and replayed, removing launch overhead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from edgedistill.engines.torch_session import model_dtype


def capture_graph(session: Any, inputs: dict[str, torch.Tensor]) -> tuple[Any, dict[str, torch.Tensor], Any]:
    """(graph, static inputs, static output) for this shape; warms up on a side stream first (CUDA's rule)."""
    static = {k: v.clone() for k, v in inputs.items()}
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):
            session.forward(**static)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        out = session.forward(**static)
    return graph, static, out


def compute(session: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The forward, replayed from a captured graph when the session asks for CUDA graphs."""
    if not session.cuda_graphs:
        with torch.inference_mode():
            return session.forward(**inputs)  # type: ignore[no-any-return]
    key = tuple(int(d) for v in inputs.values() for d in v.shape)
    if key not in session.graphs:
        session.graphs[key] = capture_graph(session, inputs)
    graph, static, out = session.graphs[key]
    for name, value in inputs.items():
        static[name].copy_(value)
    graph.replay()
    return out  # type: ignore[no-any-return]


def timed_cuda_call(session: Any, feeds: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Run once; return outputs and ``{h2d_s, compute_s, d2h_s}`` measured by CUDA events."""
    events = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
    host = {n: torch.from_numpy(model_dtype(feeds[n])).pin_memory()
            for n in session.input_names if n in feeds}
    events[0].record()
    inputs = {n: t.to(session.device, non_blocking=True) for n, t in host.items()}
    events[1].record()
    out = compute(session, inputs)
    events[2].record()
    result = out.to("cpu", non_blocking=False)
    events[3].record()
    events[3].synchronize()
    ms = [events[i].elapsed_time(events[i + 1]) for i in range(3)]
    parts = {"h2d_s": ms[0] / 1e3, "compute_s": ms[1] / 1e3, "d2h_s": ms[2] / 1e3}
    return {session.output_names[0]: result.numpy()}, parts
