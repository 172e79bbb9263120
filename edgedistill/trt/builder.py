"""Building a TensorRT engine from ONNX with the TensorRT Python API, following a :class:`BuildPlan`.

Type-checked against ``tensorrt-stubs`` by ``scripts/trt_stubs_mypy.py``; runs only where TensorRT and a GPU
are installed (tests marked ``tensorrt``). The engine is written atomically and only after the build
succeeded, so a failed build leaves no engine behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill.artifacts import atomic_write_bytes, sha256_path
from edgedistill.errors import ConfigError, InputError, MissingDependencyError
from edgedistill.targets import Target, load_target
from edgedistill.trt.facts import read_facts
from edgedistill.trt.options import BuildOptions
from edgedistill.trt.plan import BuildPlan, plan_build
from edgedistill.trt.sidecar import RuntimeInfo, make_sidecar, sidecar_path, write_sidecar
from edgedistill.trt.trtexec import trtexec_build_args

if TYPE_CHECKING:
    import tensorrt as trt

ENGINE_NAME = "model.engine"


class BuildError(InputError):
    """TensorRT could not build an engine (the message carries TensorRT's reason)."""


@dataclass(frozen=True)
class BuiltEngine:
    engine: Path
    sidecar: Path
    plan: BuildPlan


def import_tensorrt() -> object:
    try:
        import tensorrt
    except ImportError:
        raise MissingDependencyError(
            "TensorRT is not installed; `pip install edgedistill[tensorrt]` on a machine with an NVIDIA GPU, or "
            "build on the device from the bundle (`edgedistill package --target ...`)") from None
    return tensorrt


def runtime_info(plugin_library: Path | None = None) -> RuntimeInfo:
    """The TensorRT version and GPU of this machine (via torch's CUDA device query)."""
    import torch

    trt_module = import_tensorrt()
    if not torch.cuda.is_available():
        raise MissingDependencyError("no CUDA GPU is visible (torch.cuda.is_available() is False)")
    major, minor = torch.cuda.get_device_capability()
    return RuntimeInfo(
        tensorrt=str(getattr(trt_module, "__version__", "unknown")), gpu_name=torch.cuda.get_device_name(),
        compute_capability=f"{major}.{minor}",
        plugin_sha256=sha256_path(plugin_library) if plugin_library else None,
    )


def check_machine(target: Target, runtime: RuntimeInfo) -> None:
    """Engines are GPU-specific: refuse to build for a target whose GPU this machine does not have."""
    if target.compute_capability != runtime.compute_capability:
        raise ConfigError(
            f"target '{target.name}' has compute capability {target.compute_capability} but this GPU "
            f"({runtime.gpu_name}) has {runtime.compute_capability}; engines only run on the GPU that built them, "
            f"so build on the device: `edgedistill package --target {target.name}` makes a bundle with build_engine.sh")


def builder_flags() -> dict[str, trt.BuilderFlag]:
    """Plan flag names → TensorRT enum members (spelled out, so the stubs check every one)."""
    import tensorrt as trt

    flag = trt.BuilderFlag
    return {"TF32": flag.TF32, "FP16": flag.FP16, "BF16": flag.BF16, "INT8": flag.INT8, "FP8": flag.FP8,
            "FP4": flag.FP4, "GPU_FALLBACK": flag.GPU_FALLBACK}


def parse_onnx(builder: trt.Builder, logger: trt.ILogger, onnx: Path, strongly_typed: bool,
               ) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    import tensorrt as trt

    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx)):
        raise InputError(parser_message(parser, onnx))
    return network, parser


def parser_message(parser: trt.OnnxParser, onnx: Path) -> str:
    """One line naming the node TensorRT's ONNX parser rejected and why."""
    if parser.num_errors == 0:
        return f"TensorRT could not parse {onnx}"
    err = parser.get_error(0)
    node = err.node_name() or f"#{err.node()}"
    more = f" (+{parser.num_errors - 1} more)" if parser.num_errors > 1 else ""
    return (f"TensorRT cannot import node '{node}' of {onnx.name}: {err.desc()}{more}; if it is attention, "
            "fuse it into the FusedMultiHeadAttention plugin (TensorRT < 10.14) or use TensorRT >= 10.14")


def configure(builder: trt.Builder, plan: BuildPlan) -> trt.IBuilderConfig:
    import tensorrt as trt

    config = builder.create_builder_config()
    for name, member in builder_flags().items():
        if name in plan.flags:
            config.set_flag(member)
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mib << 20)
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
    if plan.opt_level is not None:
        config.builder_optimization_level = plan.opt_level
    profile = builder.create_optimization_profile()
    for p in plan.profiles:
        profile.set_shape(p.name, trt.Dims(list(p.min)), trt.Dims(list(p.opt)), trt.Dims(list(p.max)))
    if plan.profiles:
        config.add_optimization_profile(profile)
    cache = Path(plan.timing_cache) if plan.timing_cache else None
    cache_bytes = cache.read_bytes() if cache is not None and cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), False)
    return config


def build_serialized(onnx: Path, plan: BuildPlan) -> bytes:
    """Parse ``onnx`` and build the engine bytes; the timing cache is saved when the plan names one.

    Raises:
        InputError: TensorRT cannot import a node (named), or the build fails.
    """
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if plan.plugin_library:
        builder.get_plugin_registry().load_library(plan.plugin_library)
    network, _parser = parse_onnx(builder, logger, onnx, plan.strongly_typed)
    config = configure(builder, plan)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"TensorRT failed to build {onnx.name} for '{plan.target}' ({plan.precision}); "
                         "rerun with --debug and see TensorRT's log above")
    if plan.timing_cache:
        atomic_write_bytes(Path(plan.timing_cache), bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def build(model: Path, target: str, out: Path, options: BuildOptions | None = None,
          build_fn: Callable[[Path, BuildPlan], bytes] = build_serialized) -> BuiltEngine:
    """Build ``out/model.engine`` (+ ``model.engine.json``) from the ONNX file ``model`` for ``target``.

    Raises:
        ConfigError: unknown target, a choice the target cannot honour, or a GPU other than the target's.
        InputError: an op TensorRT cannot import, or the build fails; no engine file is left behind.
        MissingDependencyError: TensorRT or a CUDA GPU is missing.
    """
    options = options or BuildOptions()
    spec = load_target(target)
    runtime = runtime_info(options.plugin_library)
    check_machine(spec, runtime)
    plan = plan_build(read_facts(model), spec, options.model_copy(update={"tensorrt": runtime.tensorrt}))
    engine = out / ENGINE_NAME
    data = build_fn(model, plan)
    # sidecar first, engine last: an engine file only ever appears complete and with its sidecar
    sidecar = make_sidecar(plan, runtime, hashlib.sha256(data).hexdigest(), model,
                           trtexec_build_args(plan, str(model), str(engine)))
    write_sidecar(engine, sidecar)
    atomic_write_bytes(engine, data)
    return BuiltEngine(engine, sidecar_path(engine), plan)
