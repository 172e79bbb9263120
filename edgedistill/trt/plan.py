"""The engine builder's decisions, as pure functions: profiles, precision flags, DLA, workspace, versions.

:func:`plan_build` turns (model facts, target, options) into a :class:`BuildPlan`. The TensorRT Python builder
(:mod:`edgedistill.trt.builder`) and the device bundle's ``build_engine.sh`` (:func:`trtexec_args`) both
apply the same plan, so an engine built here and one built on the device get the same flags.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgedistill.errors import ConfigError, InputError
from edgedistill.targets.defaults import AttentionForm, parse_version, target_defaults
from edgedistill.targets.schema import Target
from edgedistill.trt.facts import ModelFacts
from edgedistill.trt.ops import check_ops
from edgedistill.trt.options import BuildOptions, DimRange

# BuilderFlag names (TensorRT Python API) per precision, in weakly typed networks.
PRECISION_FLAGS: dict[str, tuple[str, ...]] = {
    "fp32": (), "tf32": ("TF32",), "fp16": ("FP16",), "bf16": ("BF16",),
    "int8": ("INT8", "FP16"), "fp8": ("FP8", "FP16"), "fp4": ("FP4", "FP16"),
}
FLAG_SINCE = {"BF16": (9, 0), "FP8": (8, 6), "FP4": (10, 8)}
QDQ_PRECISIONS = {"int8", "fp8", "fp4"}
DEFAULT_OPT = {"batch": 1, "sequence": 128, "batch_size": 1, "sequence_length": 1, "past_sequence_length": 128,
               "total_sequence_length": 129}  # a decoder's opt shape is a decode step with some context
METADATA_RANGES = {"batch": "edgedistill.batch_range", "sequence": "edgedistill.sequence_range",
                   **{name: f"edgedistill.{name}_range" for name in ("batch_size", "sequence_length",
                                                                      "past_sequence_length", "total_sequence_length")}}
OPT_LEVEL_SINCE = (8, 6)
STRONGLY_TYPED_SINCE = (10, 0)


@dataclass(frozen=True)
class InputProfile:
    name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]


@dataclass(frozen=True)
class BuildPlan:
    """Every choice of one engine build."""

    target: str
    tensorrt: str
    precision: str
    flags: tuple[str, ...]  # BuilderFlag member names
    strongly_typed: bool
    profiles: tuple[InputProfile, ...]  # dynamic inputs only
    workspace_mib: int
    dla_core: int | None
    opt_level: int | None
    timing_cache: str | None
    plugin_library: str | None
    attention: AttentionForm


def plan_build(facts: ModelFacts, target: Target, options: BuildOptions) -> BuildPlan:
    """Decide the build of ``facts``' model for ``target``.

    Raises:
        ConfigError: the target has no GPU, lacks the precision (fp8 on Orin), a DLA choice it cannot honour,
            a profile range that is empty or unset, or an option the TensorRT version lacks.
        InputError: the graph has an op TensorRT cannot import, needs the plugin library and none was given,
            or asks for int8/fp8 without Q/DQ nodes.
    """
    if not target.has_gpu or target.tensorrt is None:
        raise ConfigError(f"target '{target.name}' is a CPU; TensorRT engines need a GPU target")
    defaults = target_defaults(target, options.tensorrt)
    tensorrt = defaults.tensorrt or target.tensorrt
    version = parse_version(tensorrt)
    precision = options.precision or defaults.precision
    check_ops(facts, tensorrt)
    dla_core = options.dla_core if options.dla_core is not None else defaults.dla_core
    return BuildPlan(
        target=target.name, tensorrt=tensorrt, precision=precision,
        flags=precision_flags(precision, target, facts, options.strongly_typed, version)
        + dla_flags(dla_core, precision, target),
        strongly_typed=check_strongly_typed(options.strongly_typed, version),
        profiles=profiles(facts, options.dims),
        workspace_mib=workspace(options.workspace_mib or defaults.workspace_mib, target),
        dla_core=dla_core, opt_level=opt_level(options.opt_level, version),
        timing_cache=str(options.timing_cache) if options.timing_cache else None,
        plugin_library=plugin_library(facts, options), attention=defaults.attention,
    )


def precision_flags(precision: str, target: Target, facts: ModelFacts, strongly_typed: bool,
                    version: tuple[int, ...]) -> tuple[str, ...]:
    """BuilderFlag names for ``precision`` (none in a strongly typed network: the graph's types rule)."""
    if precision not in target.precisions:
        cc = f" (compute capability {target.compute_capability})" if target.compute_capability else ""
        need = "; FP8 needs compute capability 8.9 or newer (Ada, Hopper, Blackwell)" if precision == "fp8" else ""
        raise ConfigError(f"target '{target.name}'{cc} has no {precision}{need}; "
                          f"choose one of {', '.join(target.precisions)}")
    if precision in QDQ_PRECISIONS and precision not in facts.quantized:
        raise InputError(f"{precision} engines come from explicit quantization, and the graph has no {precision} "
                         "QuantizeLinear/DequantizeLinear nodes; quantize with Q/DQ first or build fp16")
    flags = () if strongly_typed else PRECISION_FLAGS[precision]
    for flag in flags:
        if version < FLAG_SINCE.get(flag, (0,)):
            since = ".".join(map(str, FLAG_SINCE[flag]))
            raise ConfigError(f"{precision} needs TensorRT >= {since}; the plan is for {fmt(version)}")
    return flags


def dla_flags(dla_core: int | None, precision: str, target: Target) -> tuple[str, ...]:
    if dla_core is None:
        return ()
    if target.dla_cores == 0:
        raise ConfigError(f"target '{target.name}' has no DLA; drop --dla-core")
    if dla_core >= target.dla_cores:
        raise ConfigError(f"target '{target.name}' has DLA cores 0..{target.dla_cores - 1}; got {dla_core}")
    if precision not in ("fp16", "int8"):
        raise ConfigError(f"DLA runs fp16 or int8, not {precision}; pick --precision fp16 or int8")
    return ("GPU_FALLBACK",)


def check_strongly_typed(strongly_typed: bool, version: tuple[int, ...]) -> bool:
    if strongly_typed and version < STRONGLY_TYPED_SINCE:
        raise ConfigError(f"strongly typed networks need TensorRT >= 10.0; the plan is for {fmt(version)}")
    return strongly_typed


def opt_level(level: int | None, version: tuple[int, ...]) -> int | None:
    """The builder optimisation level to set: None on TensorRT < 8.6 (no such option) unless asked for."""
    if version < OPT_LEVEL_SINCE:
        if level is not None:
            raise ConfigError(f"builder optimisation levels need TensorRT >= 8.6; the plan is for {fmt(version)}")
        return None
    return 3 if level is None else level


def workspace(mib: int, target: Target) -> int:
    if mib > target.memory_gib * 1024:
        raise ConfigError(f"workspace {mib} MiB exceeds the {target.memory_gib:g} GiB of target '{target.name}'")
    return mib


def plugin_library(facts: ModelFacts, options: BuildOptions) -> str | None:
    if not facts.uses_plugin:
        return None
    if options.plugin_library is None:
        raise InputError("the graph uses the FusedMultiHeadAttention plugin; build edgedistill/plugins with CMake "
                         "and pass its library with --plugin-lib")
    return str(options.plugin_library)


def dim_range(name: str, given: dict[str, DimRange], metadata: dict[str, str], where: str) -> DimRange:
    """The range of dimension ``name``: from the options, else from the export metadata."""
    if name in given:
        rng = given[name]
    elif name in METADATA_RANGES and METADATA_RANGES[name] in metadata:
        low, high = (int(x) for x in metadata[METADATA_RANGES[name]].split(","))
        if low > high:
            raise ConfigError(f"{METADATA_RANGES[name]} in the ONNX metadata is empty ({low} > {high}); re-export")
        rng = DimRange(min=low, max=high)
    else:
        raise ConfigError(f"{where} is dynamic ('{name}') and has no range; set dims.{name} (min, opt, max)")
    opt = rng.opt if rng.opt is not None else max(rng.min, min(rng.max, DEFAULT_OPT.get(name, rng.max)))
    return DimRange(min=rng.min, opt=opt, max=rng.max)


def profiles(facts: ModelFacts, given: dict[str, DimRange]) -> tuple[InputProfile, ...]:
    """One min/opt/max shape per dynamic input."""
    out = []
    for graph_input in facts.inputs:
        if not graph_input.is_dynamic:
            continue
        triples = [axis_sizes(d, given, facts.metadata, f"input '{graph_input.name}' axis {axis}")
                   for axis, d in enumerate(graph_input.shape)]
        lows, opts, highs = (tuple(t[i] for t in triples) for i in range(3))
        out.append(InputProfile(graph_input.name, lows, opts, highs))
    return tuple(out)


def axis_sizes(d: int | str, given: dict[str, DimRange], metadata: dict[str, str], where: str
               ) -> tuple[int, int, int]:
    if isinstance(d, int):
        return d, d, d
    rng = dim_range(d, given, metadata, where)
    return rng.min, rng.opt or rng.min, rng.max


def fmt(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))
