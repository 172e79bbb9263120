"""Engine build decisions (pure, no TensorRT): profiles, precision flags, DLA, versions, ops, trtexec flags."""

from __future__ import annotations

import pytest
from onnx import helper
from pydantic import ValidationError
from support.onnx_graphs import META, encoder

from edgedistill.errors import ConfigError, InputError
from edgedistill.targets import list_targets, load_target
from edgedistill.trt import BuildOptions, DimRange, plan_build, trtexec_build_args
from edgedistill.trt.facts import facts_from_proto
from edgedistill.trt.plan import PRECISION_FLAGS
from edgedistill.trt.trtexec import TRTEXEC_FLAG, trtexec_bench_args


def plan(target="jetson-agx-orin-64gb", model=None, **options):
    return plan_build(facts_from_proto(model or encoder()), load_target(target), BuildOptions(**options))


def test_profiles_come_from_export_metadata():
    p = plan()
    assert [(x.name, x.min, x.opt, x.max) for x in p.profiles] == [("input_ids", (1, 1), (1, 128), (64, 256))]
    assert (p.precision, p.flags, p.workspace_mib, p.opt_level, p.attention) == ("fp16", ("FP16",), 4096, 3, "plugin")


def test_profile_options_override_and_validate():
    p = plan(dims={"sequence": DimRange(min=16, opt=64, max=128)})
    assert p.profiles[0].min == (1, 16) and p.profiles[0].opt == (1, 64) and p.profiles[0].max == (64, 128)
    with pytest.raises(ValidationError, match="min 8 > max 4"):
        BuildOptions(dims={"batch": {"min": 8, "max": 4}})
    with pytest.raises(ValidationError, match="opt 9 is outside"):
        DimRange(min=1, opt=9, max=4)


def test_dynamic_dim_without_range_names_the_option():
    with pytest.raises(ConfigError, match=r"input 'input_ids' axis 1 is dynamic \('sequence'\).*dims.sequence"):
        plan(model=encoder(meta={"edgedistill.batch_range": "1,8"}))
    with pytest.raises(ConfigError, match="is empty"):
        plan(model=encoder(meta={**META, "edgedistill.batch_range": "9,8"}))


def test_fp8_on_orin_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match=r"compute capability 8\.7\) has no fp8; FP8 needs compute capability 8\.9"):
        plan(precision="fp8", model=encoder(qdq="fp8"))
    assert plan("h100", precision="fp8", model=encoder(qdq="fp8")).flags == ("FP8", "FP16")


def test_int8_needs_qdq():
    with pytest.raises(InputError, match="explicit quantization"):
        plan(precision="int8")
    assert plan(precision="int8", model=encoder(qdq="int8")).flags == ("INT8", "FP16")
    assert plan(precision="int8", model=encoder(qdq="int8"), strongly_typed=True).flags == ()


def test_unknown_target_and_cpu_target():
    with pytest.raises(ConfigError, match="unknown target"):
        plan("jetson-orin-nanoo")
    with pytest.raises(ConfigError, match="is a CPU"):
        plan("x86-64-avx2")


def test_dla_choices():
    p = plan(dla_core=1)
    assert p.flags == ("FP16", "GPU_FALLBACK") and p.dla_core == 1
    with pytest.raises(ConfigError, match="has no DLA"):
        plan("jetson-orin-nano-8gb", dla_core=0)
    with pytest.raises(ConfigError, match=r"DLA cores 0\.\.1; got 2"):
        plan(dla_core=2)
    with pytest.raises(ConfigError, match="DLA runs fp16 or int8"):
        plan(dla_core=0, precision="fp32")


def test_tensorrt_version_gates():
    xavier = plan("jetson-agx-xavier")
    assert xavier.opt_level is None
    assert "--buildOnly" in trtexec_build_args(xavier, "m.onnx", "m.engine")
    with pytest.raises(ConfigError, match="optimisation levels need TensorRT >= 8.6"):
        plan("jetson-agx-xavier", opt_level=5)
    with pytest.raises(ConfigError, match="strongly typed networks need TensorRT >= 10.0"):
        plan("jetson-agx-xavier", strongly_typed=True)
    with pytest.raises(ConfigError, match="workspace 99999999 MiB exceeds"):
        plan(workspace_mib=99_999_999)


def test_ops_tensorrt_cannot_import_are_named():
    attention = helper.make_node("Attention", ["h2", "h2", "h2"], ["a"], name="attn0")
    with pytest.raises(InputError, match=r"node 'attn0' is ONNX Attention, which TensorRT imports from 10\.14"):
        plan(model=encoder([attention]))
    assert plan("h100", model=encoder([attention])).attention == "native"
    dql = helper.make_node("DynamicQuantizeLinear", ["h2"], ["q", "qs", "qz"], name="dq0")
    with pytest.raises(InputError, match="'dq0' is DynamicQuantizeLinear .* cannot import in any version"):
        plan(model=encoder([dql]))
    contrib = helper.make_node("SkipLayerNormalization", ["h2"], ["y"], name="sln", domain="com.microsoft")
    with pytest.raises(InputError, match="contrib op com.microsoft.SkipLayerNormalization"):
        plan(model=encoder([contrib]))


def test_plugin_library_is_required_and_passed_per_version():
    fused = helper.make_node("FusedMultiHeadAttention", ["h2", "h2", "h2"], ["a"], domain="edgedistill",
                             num_heads=1, head_size=4)
    with pytest.raises(InputError, match="--plugin-lib"):
        plan(model=encoder([fused]))
    orin = plan(model=encoder([fused]), plugin_library="lib.so")
    assert "--staticPlugins=lib.so" in trtexec_build_args(orin, "m.onnx", "m.engine")
    xavier = plan("jetson-xavier-nx", model=encoder([fused]), plugin_library="lib.so")
    assert "--plugins=lib.so" in trtexec_build_args(xavier, "m.onnx", "m.engine")


def test_trtexec_command_for_orin_dla_int8():
    p = plan(precision="int8", model=encoder(qdq="int8"), dla_core=0, timing_cache="t.cache")
    assert trtexec_build_args(p, "model.onnx", "model.engine") == [
        "trtexec", "--onnx=model.onnx", "--saveEngine=model.engine", "--minShapes=input_ids:1x1",
        "--optShapes=input_ids:1x128", "--maxShapes=input_ids:64x256", "--int8", "--fp16", "--allowGPUFallback",
        "--memPoolSize=workspace:4096", "--useDLACore=0", "--builderOptimizationLevel=3",
        "--timingCacheFile=t.cache", "--skipInference",
    ]
    bench = trtexec_bench_args(p, "model.engine", "times.json")
    assert "--shapes=input_ids:1x128" in bench and "--useDLACore=0" in bench


@pytest.mark.parametrize("target", [t for t in list_targets() if t.has_gpu], ids=lambda t: t.name)
def test_trtexec_flags_mirror_builder_flags_for_every_precision(target):
    """Both command lines come from the same plan: each builder flag has its trtexec flag and nothing else."""
    for precision in target.precisions:
        qdq = precision if precision in ("int8", "fp8") else None
        if precision == "fp4":
            continue  # fp4 Q/DQ graphs need block quantization, not built here
        p = plan(target.name, model=encoder(qdq=qdq), precision=precision)
        assert p.flags == PRECISION_FLAGS[precision]
        args = trtexec_build_args(p, "m.onnx", "m.engine")
        expected = {f for name in p.flags if (f := TRTEXEC_FLAG[name])}
        assert {a for a in args if a in set(TRTEXEC_FLAG.values())} == expected


def test_cli_dim_specs():
    from edgedistill.trt.options import parse_dim_ranges, parse_dim_sizes

    assert parse_dim_ranges(["sequence=16:64:128", "batch=1:8"]) == {
        "sequence": {"min": 16, "opt": 64, "max": 128}, "batch": {"min": 1, "max": 8}}
    assert BuildOptions(dims=parse_dim_ranges(["batch=1:8"])).dims["batch"].max == 8
    assert parse_dim_sizes(["batch=2", "sequence=128"]) == {"batch": 2, "sequence": 128}
    for bad in (["sequence=1-8"], ["=1:2"]):
        with pytest.raises(ConfigError, match="expected NAME=MIN:MAX"):
            parse_dim_ranges(bad)
    with pytest.raises(ConfigError, match="expected NAME=SIZE"):
        parse_dim_sizes(["batch=0"])
