"""Sidecar mismatch checks (pure) and the builder's no-partial-engine guarantee (TensorRT stubbed out)."""

from __future__ import annotations

import hashlib
import json

import onnx
import pytest
from support.onnx_graphs import encoder

from edgedistill.errors import ConfigError, InputError
from edgedistill.targets import load_target
from edgedistill.trt import BuildOptions, EngineMismatchError, RuntimeInfo, check_sidecar, mismatches
from edgedistill.trt import builder as trt_builder
from edgedistill.trt.sidecar import EngineSidecar, read_sidecar, sidecar_path

ORIN = RuntimeInfo(tensorrt="10.3.0.30", gpu_name="Orin", compute_capability="8.7")


def sidecar(**changes) -> EngineSidecar:
    data = dict(engine_sha256="0" * 64, onnx_sha256="1" * 64, tensorrt="10.3.0.30", gpu_name="Orin",
                compute_capability="8.7", target="jetson-agx-orin-64gb", precision="fp16", flags=["FP16"],
                strongly_typed=False, profiles=[], workspace_mib=4096, dla_core=None, plugin_library=None,
                plugin_sha256=None, trtexec=["trtexec"])
    return EngineSidecar(**{**data, **changes})


def test_same_machine_has_no_mismatch():
    assert mismatches(sidecar(), ORIN) == []
    assert mismatches(sidecar(tensorrt="10.3.0"), ORIN) == []  # build numbers may differ in how they are spelt


def test_other_gpu_and_tensorrt_are_described():
    rtx = RuntimeInfo(tensorrt="10.15.1", gpu_name="NVIDIA GeForce RTX 4090", compute_capability="8.9")
    found = mismatches(sidecar(), rtx)
    assert found == ["built with TensorRT 10.3.0.30, this machine has TensorRT 10.15.1",
                     "built for Orin (compute capability 8.7), this GPU is NVIDIA GeForce RTX 4090 (8.9)"]


def test_plugin_library_hash_is_checked():
    found = mismatches(sidecar(plugin_sha256="a" * 64), ORIN)
    assert found == ["built with plugin library sha256 aaaaaaaaaaaa, loading no plugin library"]


def test_check_sidecar_refuses_and_says_what_to_do(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"plan")
    good = sidecar(engine_sha256=hashlib.sha256(b"plan").hexdigest())
    check_sidecar(engine, good, ORIN)
    with pytest.raises(EngineMismatchError, match=r"model.engine: built with TensorRT 10\.3\.0\.30, this machine has "
                                                  r"TensorRT 8\.5\.2.*rebuild on this machine"):
        check_sidecar(engine, good, ORIN.model_copy(update={"tensorrt": "8.5.2"}))
    engine.write_bytes(b"other")
    with pytest.raises(EngineMismatchError, match="differs from the one the sidecar describes"):
        check_sidecar(engine, good, ORIN)


def test_missing_or_broken_sidecar(tmp_path):
    engine = tmp_path / "model.engine"
    with pytest.raises(InputError, match="is missing, so model.engine cannot be checked"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({"format": 1}))
    with pytest.raises(InputError, match="required key is missing; rebuild the engine"):
        read_sidecar(engine)


@pytest.fixture
def fake_orin(monkeypatch):
    monkeypatch.setattr(trt_builder, "runtime_info", lambda plugin=None: ORIN)


def test_failed_build_leaves_no_engine(tmp_path, fake_orin):
    onnx.save(encoder(), tmp_path / "model.onnx")

    def failing(model, plan):
        raise trt_builder.BuildError("TensorRT failed")

    with pytest.raises(InputError, match="TensorRT failed"):
        trt_builder.build(tmp_path / "model.onnx", "jetson-agx-orin-64gb", tmp_path / "out", build_fn=failing)
    assert not (tmp_path / "out" / "model.engine").exists()


def test_build_writes_engine_and_matching_sidecar(tmp_path, fake_orin):
    onnx.save(encoder(), tmp_path / "model.onnx")
    built = trt_builder.build(tmp_path / "model.onnx", "jetson-agx-orin-64gb", tmp_path / "out",
                              BuildOptions(precision="fp16"), build_fn=lambda model, plan: b"engine-bytes")
    side = read_sidecar(built.engine)
    check_sidecar(built.engine, side, ORIN)
    assert side.target == "jetson-agx-orin-64gb" and side.flags == ["FP16"] and "--fp16" in side.trtexec
    assert side.profiles == [{"name": "input_ids", "min": [1, 1], "opt": [1, 128], "max": [64, 256]}]


def test_building_for_another_gpu_points_to_the_bundle(tmp_path, fake_orin):
    onnx.save(encoder(), tmp_path / "model.onnx")
    message = r"compute capability 8\.9 but this GPU \(Orin\) has 8\.7.*edgedistill package"
    with pytest.raises(ConfigError, match=message):
        trt_builder.build(tmp_path / "model.onnx", "rtx-4090", tmp_path / "out", build_fn=lambda m, p: b"")


def test_machine_check_is_per_compute_capability():
    """Another Orin module builds here (same 8.7); a Xavier target (7.2) is refused with the bundle route."""
    for name in ("jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb"):
        assert trt_builder.check_machine(load_target(name), ORIN) is None
    with pytest.raises(ConfigError, match=r"'jetson-xavier-nx' has compute capability 7\.2 but this GPU \(Orin\)"):
        trt_builder.check_machine(load_target("jetson-xavier-nx"), ORIN)


def test_build_and_package_are_stages_of_a_run_directory(tmp_path, fake_orin):
    """Through the API (as the CLI calls it) build and package record a manifest row, publish atomically into
    their stage folder, and are skipped when nothing changed."""
    from edgedistill import api
    from edgedistill.artifacts import read_json

    onnx.save(encoder(), tmp_path / "model.onnx")
    calls = []

    def fake_build(model, plan):
        calls.append(plan.target)
        return b"engine-bytes"

    engine = api.build(tmp_path / "model.onnx", "jetson-orin-nano-8gb", tmp_path / "run", build_fn=fake_build)
    assert engine.kind == "trt" and engine.path == tmp_path / "run" / "build" / "model.engine"
    assert read_sidecar(engine.path).target == "jetson-orin-nano-8gb"
    bundle = api.package(tmp_path / "model.onnx", "jetson-orin-nano-8gb", tmp_path / "run")
    assert (bundle.path / "manifest.json").is_file() and (tmp_path / "run" / "package" / "bundle.tar.gz").is_file()
    stages = read_json(tmp_path / "run" / "manifest.json")["stages"]
    assert {"build", "package"} <= set(stages) and stages["build"]["config"]["target"] == "jetson-orin-nano-8gb"
    api.build(tmp_path / "model.onnx", "jetson-orin-nano-8gb", tmp_path / "run", build_fn=fake_build)
    assert calls == ["jetson-orin-nano-8gb"]  # unchanged: skipped
    assert not list((tmp_path / "run").glob("*.partial"))
