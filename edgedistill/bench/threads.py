"""Thread pinning: every backend gets the same intra-op and inter-op thread counts, and the threading
environment variables in force are recorded (they silently change what OpenMP/MKL do)."""

from __future__ import annotations

import os

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES",
               "KMP_AFFINITY", "GOMP_CPU_AFFINITY", "ORT_NUM_THREADS")


def thread_env() -> dict[str, str]:
    """The threading variables set in this process's environment."""
    return {k: os.environ[k] for k in THREAD_VARS if k in os.environ}


def pin_threads(threads: int, inter_op_threads: int = 1) -> dict[str, int]:
    """Pin torch's intra/inter-op threads (ORT sessions take theirs from SessionOptions).

    Returns:
        ``{"intra_op": n, "inter_op": m}`` as torch reports them after pinning.
    """
    import torch

    from edgedistill.engines.torch_session import pin_torch_threads

    pin_torch_threads(threads, inter_op_threads)
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
