"""Device bundle: contents, relative paths, scripts with the builder's flags, safe unpacking, results summary."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgedistill.artifacts import umask_mode
from edgedistill.bundle import package, unpack, verify_bundle
from edgedistill.bundle.device_summary import percentile, power_samples, summarise
from edgedistill.bundle.package import bundle_plan
from edgedistill.errors import ConfigError, InputError
from edgedistill.targets import load_target
from edgedistill.trt import BuildOptions, trtexec_build_args
from edgedistill.trt.facts import read_facts

REPO = Path(__file__).resolve().parents[2]


def encoder(extra: list[onnx.NodeProto] = ()) -> onnx.ModelProto:
    """ids (batch, sequence) → embedding → mean over sequence (batch, 4), with the export's metadata."""
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["h2"]), *extra,
             helper.make_node("ReduceMean", ["h2", "axes"], ["emb"], keepdims=0)]
    inits = [helper.make_tensor("table", TensorProto.FLOAT, [10, 4], np.zeros(40, np.float32)),
             helper.make_tensor("axes", TensorProto.INT64, [1], [1])]
    graph = helper.make_graph(
        nodes, "enc", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", 4])], inits)
    opsets = [helper.make_opsetid("", 21), helper.make_opsetid("edgedistill", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    for k, v in {"edgedistill.batch_range": "1,64", "edgedistill.sequence_range": "1,256",
                 "edgedistill.max_length": "256"}.items():
        model.metadata_props.add(key=k, value=v)
    return model


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "student-onnx"
    folder.mkdir()
    onnx.save(encoder(), folder / "model.onnx")
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (folder / "tokenizer_config.json").write_text("{}")
    return folder


def test_bundle_contents_and_manifest(model_dir, tmp_path):
    b = package(model_dir / "model.onnx", "jetson-orin-nano-8gb", tmp_path / "bundle")
    m = b.manifest
    assert m["target"] == "jetson-orin-nano-8gb" and m["tensorrt"] == "10.3" and m["precision"] == "fp16"
    assert m["inputs"] == [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"],
                            "min": [1, 1], "opt": [1, 128], "max": [64, 256]}]
    assert m["outputs"] == [{"name": "emb", "dtype": "float32", "shape": ["batch", 4]}]
    assert m["preprocessing"]["max_length"] == 256
    assert set(m["preprocessing"]["files"]) == {"model/vocab.txt", "model/tokenizer_config.json"}
    assert all(not p.startswith("/") and ".." not in p for p in m["files"])
    for name in ("build_engine.sh", "bench.sh", "bench_summary.py", "manifest.tsv", "runner/main.cpp"):
        assert (b.folder / name).is_file(), name
    assert (b.folder / "manifest.tsv").read_text() == "input\tinput_ids\tint64\t1x128\noutput\temb\tfloat32\n"
    assert not (b.folder / "plugins").exists()  # the graph does not use the plugin
    assert b.tarball is not None and b.tarball.is_file()


def test_build_script_runs_the_builders_flags(model_dir, tmp_path):
    b = package(model_dir / "model.onnx", "jetson-agx-orin-64gb", tmp_path / "bundle", BuildOptions(dla_core=0))
    script = (b.folder / "build_engine.sh").read_text()
    flags = " ".join(b.manifest["build"]["trtexec"][3:])
    assert flags in script  # same flags as the plan, after --onnx/--saveEngine
    assert "--useDLACore=0 " in script and "--allowGPUFallback" in script
    plan = bundle_plan(read_facts(model_dir / "model.onnx"), load_target("jetson-agx-orin-64gb"),
                       BuildOptions(dla_core=0))
    assert b.manifest["build"]["trtexec"] == trtexec_build_args(plan, "model/model.onnx", "model.engine")
    for name in ("build_engine.sh", "bench.sh"):
        subprocess.run(["bash", "-n", str(b.folder / name)], check=True)  # valid shell


def test_plugin_sources_are_copied_when_the_graph_needs_them(tmp_path):
    fused = helper.make_node("FusedMultiHeadAttention", ["h2", "h2", "h2"], ["a"], domain="edgedistill",
                            num_heads=1, head_size=4)
    onnx.save(encoder([fused]), tmp_path / "model.onnx")
    plugin = tmp_path / "fused_attention"
    plugin.mkdir()
    (plugin / "spec.json").write_text("{}")
    (plugin / "CMakeLists.txt").write_text("# plugin build\n")
    b = package(tmp_path / "model.onnx", "jetson-orin-nx-16gb", tmp_path / "bundle", plugin_dir=plugin, tarball=False)
    assert (b.folder / "plugins" / "fused_attention" / "CMakeLists.txt").is_file()
    script = (b.folder / "build_engine.sh").read_text()
    assert '--staticPlugins="$PLUGIN_LIB"' in script and "cmake -S plugins/fused_attention" in script


def test_bad_targets_are_refused_and_leave_nothing(model_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown target"):
        package(model_dir / "model.onnx", "jetson-nano", tmp_path / "bundle")
    with pytest.raises(ConfigError, match="has no fp8"):
        package(model_dir / "model.onnx", "jetson-agx-orin-64gb", tmp_path / "bundle", BuildOptions(precision="fp8"))
    assert not (tmp_path / "bundle").exists()


def test_unpack_round_trip_and_tamper_check(model_dir, tmp_path):
    b = package(model_dir / "model.onnx", "rtx-4090", tmp_path / "bundle")
    folder = unpack(b.tarball, tmp_path / "device")
    assert (folder / "model" / "model.onnx").is_file()
    (folder / "model" / "vocab.txt").write_text("changed")
    with pytest.raises(InputError, match="'model/vocab.txt' differs"):
        verify_bundle(folder)


@pytest.mark.parametrize(("name", "kind"), [("../evil.sh", tarfile.REGTYPE), ("/etc/evil", tarfile.REGTYPE),
                                            ("bundle/link", tarfile.SYMTYPE), ("bundle/dev", tarfile.CHRTYPE)])
def test_unpack_refuses_escapes(tmp_path, name, kind):
    tarball = tmp_path / "evil.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    with pytest.raises(InputError, match="refusing to unpack"):
        unpack(tarball, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


def test_dot_rooted_and_uncompressed_tars_unpack(model_dir, tmp_path):
    """`tar -C bundle -czf b.tgz .` (files at the root, `./` names) and a plain tar of the folder both unpack."""
    b = package(model_dir / "model.onnx", "rtx-4090", tmp_path / "bundle")
    subprocess.run(["tar", "-C", str(b.folder), "-czf", str(tmp_path / "mine.tgz"), "."], check=True)
    folder = unpack(tmp_path / "mine.tgz", tmp_path / "device")
    assert folder == tmp_path / "device" / "mine" and (folder / "model" / "model.onnx").is_file()
    assert b.tarball is not None and b.tarball.stat().st_mode & 0o777 == umask_mode()  # not mkstemp's 0600
    with tarfile.open(tmp_path / "plain.tar", "w") as tar:
        tar.add(b.folder, arcname="bundle")
    assert (unpack(tmp_path / "plain.tar", tmp_path / "device2") / "manifest.json").is_file()


def test_not_a_tar_or_a_tampered_one_leaves_nothing(model_dir, tmp_path):
    import zipfile

    b = package(model_dir / "model.onnx", "rtx-4090", tmp_path / "bundle")
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        archive.write(b.folder / "manifest.json", "bundle/manifest.json")
    with pytest.raises(InputError, match="b.zip is not a tar archive"):
        unpack(tmp_path / "b.zip", tmp_path / "device")
    (b.folder / "model" / "vocab.txt").write_text("changed")
    with tarfile.open(tmp_path / "tampered.tar.gz", "w:gz") as tar:
        tar.add(b.folder, arcname="bundle")
    with pytest.raises(InputError, match="'model/vocab.txt' differs"):
        unpack(tmp_path / "tampered.tar.gz", tmp_path / "device")
    assert not any((tmp_path / "device").iterdir())


def test_a_link_where_the_bundle_goes_is_refused(model_dir, tmp_path):
    b = package(model_dir / "model.onnx", "rtx-4090", tmp_path / "bundle")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "bundle").symlink_to(elsewhere)
    with pytest.raises(InputError, match=r"device/bundle: it is a symbolic link \(to .*elsewhere\)"):
        unpack(b.tarball, tmp_path / "device")
    assert not any(elsewhere.iterdir())


def test_unpack_command(model_dir, tmp_path):
    from typer.testing import CliRunner

    from edgedistill.cli import app

    b = package(model_dir / "model.onnx", "rtx-4090", tmp_path / "bundle")
    result = CliRunner().invoke(app, ["unpack", str(b.tarball), "--out", str(tmp_path / "device")])
    assert result.exit_code == 0 and f"bundle: {tmp_path / 'device' / 'bundle'}" in result.output, result.output
    bad = CliRunner().invoke(app, ["unpack", str(tmp_path / "nope.tgz"), "--out", str(tmp_path / "device")])
    assert bad.exit_code == 1 and bad.output.startswith("error: InputError: bundle not found")


def test_device_summary_reads_trtexec_and_tegrastats(tmp_path):
    times = [{"latencyMs": v} for v in (1.0, 2.0, 3.0, 4.0)]
    tegra = ("RAM 2193/7620MB CPU [1%@729] VDD_IN 5000mW/5000mW VDD_CPU_GPU_CV 900mW/900mW\n"
             "RAM 2193/7620MB VDD_IN 7000mW/6000mW\n")
    result = summarise(times, tegra, {"target": "jetson-orin-nano-8gb", "inputs": [{"name": "ids", "opt": [1, 8]}]})
    assert result["latency_ms"]["p50"] == 2.0 and result["latency_ms"]["p99"] == 4.0
    assert result["power_mw"] == {"samples": 2, "mean": 6000.0, "max": 7000}
    assert result["throughput_per_s"] == pytest.approx(400.0)
    assert power_samples("POM_5V_IN 3245/3245 POM_5V_GPU 100/100") == [3245]  # Xavier's format
    assert percentile([], 50) is None
    (tmp_path / "t.json").write_text(json.dumps(times))
    (tmp_path / "m.json").write_text("{}")
    out = subprocess.run(["python3", "edgedistill/bundle/device_summary.py", str(tmp_path / "t.json"),
                          str(tmp_path / "none.log"), str(tmp_path / "m.json")], capture_output=True, text=True,
                         check=True, cwd=REPO)
    assert json.loads(out.stdout)["power_mw"]["samples"] == 0
