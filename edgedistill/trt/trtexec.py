"""``trtexec`` command lines from a :class:`BuildPlan`: the same decisions as the Python builder, as flags.

Flag spellings follow trtexec's own help in each TensorRT release (samples/common/sampleOptions.cpp):
8.5 has ``--buildOnly`` and ``--plugins``; 8.6 and later ``--skipInference``; 10.x ``--staticPlugins``.
"""

from __future__ import annotations

from edgedistill.targets.defaults import parse_version
from edgedistill.trt.plan import BuildPlan, InputProfile

TRTEXEC_FLAG = {"TF32": None, "FP16": "--fp16", "BF16": "--bf16", "INT8": "--int8", "FP8": "--fp8", "FP4": "--fp4",
                "GPU_FALLBACK": "--allowGPUFallback"}


def shape_arg(profiles: tuple[InputProfile, ...], which: str) -> str:
    """``input_ids:1x128,attention_mask:1x128`` for min, opt or max."""
    return ",".join(f"{p.name}:" + "x".join(map(str, getattr(p, which))) for p in profiles)


def trtexec_build_args(plan: BuildPlan, onnx: str, engine: str) -> list[str]:
    """The trtexec command that builds ``engine`` from ``onnx`` exactly as :func:`build_engine` would."""
    version = parse_version(plan.tensorrt)
    args = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}"]
    if plan.profiles:
        args += [f"--{which}Shapes={shape_arg(plan.profiles, which)}" for which in ("min", "opt", "max")]
    args += [flag for name in plan.flags if (flag := TRTEXEC_FLAG[name])]
    if plan.strongly_typed:
        args.append("--stronglyTyped")
    args.append(f"--memPoolSize=workspace:{plan.workspace_mib}")
    if plan.dla_core is not None:
        args.append(f"--useDLACore={plan.dla_core}")
    if plan.opt_level is not None:
        args.append(f"--builderOptimizationLevel={plan.opt_level}")
    if plan.timing_cache:
        args.append(f"--timingCacheFile={plan.timing_cache}")
    if plan.plugin_library:
        args.append(f"--{'staticPlugins' if version >= (10,) else 'plugins'}={plan.plugin_library}")
    args.append("--skipInference" if version >= (8, 6) else "--buildOnly")
    return args


def trtexec_bench_args(plan: BuildPlan, engine: str, times_json: str, iterations: int = 1000,
                       warmup_ms: int = 2000) -> list[str]:
    """Time ``engine`` at the profile's opt shapes: p50/p90/p99, times exported as JSON."""
    version = parse_version(plan.tensorrt)
    args = ["trtexec", f"--loadEngine={engine}"]
    if plan.profiles:
        args.append(f"--shapes={shape_arg(plan.profiles, 'opt')}")
    args += [f"--warmUp={warmup_ms}", f"--iterations={iterations}", "--percentile=50,90,99", "--useSpinWait",
             f"--exportTimes={times_json}"]
    if plan.dla_core is not None:
        args.append(f"--useDLACore={plan.dla_core}")
    if plan.plugin_library:
        args.append(f"--{'staticPlugins' if version >= (10,) else 'plugins'}={plan.plugin_library}")
    return args
