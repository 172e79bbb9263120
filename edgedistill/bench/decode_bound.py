"""The memory-bandwidth bound of decode: one new token reads every weight once (the embedding table aside, of
which it reads one row, unless the table is also the output projection), so tokens/s ≤ read bandwidth ÷ bytes of
weights read per token. This module measures the bandwidth and counts those bytes for each kind of artifact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

LOOKUP_OPS = {"Gather", "GatherBlockQuantized"}
LAYOUT_OPS = {"Transpose", "Reshape", "Cast"}  # on a constant, folded once when the session starts


def read_bandwidth(threads: int, gib: float = 1.0, repeats: int = 7) -> float:
    """Bytes/s of reading a ``gib`` GiB float32 tensor with ``threads`` threads (the best of ``repeats`` sums)."""
    import torch

    torch.set_num_threads(threads)
    data = torch.ones(int(gib * 2**30 / 4), dtype=torch.float32)
    data.sum()
    best = min(timed(lambda: data.sum()) for _ in range(repeats))
    return data.numel() * 4 / best


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def onnx_bytes_per_token(path: Path) -> int:
    """Bytes of the initializers a decode step reads: all, but those only gathered from (embedding tables)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_gathered(name: str) -> bool:  # every path from the tensor ends in a lookup, through layout ops
        users = consumers.get(name, [])
        return bool(users) and all(n.op_type in LOOKUP_OPS or (n.op_type in LAYOUT_OPS and
                                                               all(only_gathered(o) for o in n.output))
                                   for n in users)

    return sum(int(np.prod(t.dims, dtype=np.int64)) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in graph.initializer if consumers.get(t.name) and not only_gathered(t.name))


def torch_bytes_per_token(model: Any) -> int:
    """Bytes of the parameters a decode step reads: all but an input embedding that is not also the output."""
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight.data_ptr() == embedding.data_ptr()
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    return int(total if tied else total - embedding.numel() * embedding.element_size())


def gguf_bytes_per_token(path: Path) -> int:
    """Bytes of the GGUF tensors a decode step reads: all but ``token_embd`` when an ``output`` tensor exists."""
    from gguf import GGUFReader

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(str(path)).tensors}
    total = sum(tensors.values())
    return total - tensors.get("token_embd.weight", 0) if "output.weight" in tensors else total
