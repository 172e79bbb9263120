"""TensorRT engines: build decisions (pure), the TensorRT builder, sidecar checks and an engine Session.

Only :mod:`builder` and :mod:`session` import TensorRT, and only inside functions, so everything else
(planning, trtexec command lines, sidecar checks) works and is tested without it.
"""

from __future__ import annotations

from edgedistill.trt.options import BuildOptions, DimRange
from edgedistill.trt.plan import BuildPlan, InputProfile, plan_build
from edgedistill.trt.sidecar import EngineMismatchError, EngineSidecar, RuntimeInfo, check_sidecar, mismatches
from edgedistill.trt.trtexec import trtexec_bench_args, trtexec_build_args

__all__ = ["BuildOptions", "BuildPlan", "DimRange", "EngineMismatchError", "EngineSidecar", "InputProfile",
           "RuntimeInfo", "check_sidecar", "mismatches", "plan_build", "trtexec_bench_args", "trtexec_build_args"]
