"""Target YAML files: all valid and sourced, consistent numbers, did-you-mean errors, defaults they pick."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from edgedistill.errors import ConfigError
from edgedistill.targets import attention_form, list_targets, load_target, target_defaults, targets_dir
from edgedistill.targets.schema import Target

EXPECTED = {
    "jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb", "jetson-xavier-nx", "jetson-agx-xavier",
    "jetson-agx-thor", "rtx-3060", "rtx-4090", "a100", "h100", "h200", "x86-64-avx2", "x86-64-avx512-vnni",
    "arm64-cpu",
}
# dense FP16 tensor FLOP per clock per SM, by architecture (A100/Orin: 1024 FMA; Volta: 8 TC x 64 FMA)
FP16_PER_SM_CLOCK = {"7.2": 1024, "8.7": 2048}


def test_every_issue_target_is_present_and_valid():
    assert {t.name for t in list_targets()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_numbers_are_consistent(name):
    t = load_target(name)
    p = t.peak
    if p.fp16:
        assert p.fp16 >= p.fp32
    if p.int8 and p.fp16 and t.has_gpu:
        assert p.int8 == pytest.approx(2 * p.fp16, rel=0.02)  # tensor cores: int8 at twice the fp16 rate
    if t.compute_capability in FP16_PER_SM_CLOCK:  # Jetson peaks are derived: SM x clock x per-SM rate
        derived = t.sm_count * t.gpu_max_mhz * 1e6 * FP16_PER_SM_CLOCK[t.compute_capability] / 1e12
        assert p.fp16 == pytest.approx(derived, rel=0.02)
    if t.kind == "cpu":
        assert t.tensorrt is None and t.compute_capability is None


def test_agx_orin_matches_its_data_sheet():
    t = load_target("jetson-agx-orin-64gb")
    assert (t.compute_capability, t.sm_count, t.dla_cores, t.memory_bandwidth_gbs) == ("8.7", 16, 2, 204.8)
    assert 2 * t.peak.int8 == pytest.approx(170, rel=0.01)  # the GPU's 170 sparse INT8 TOPS
    assert "fp8" not in t.precisions


def test_unknown_target_suggests_and_lists():
    with pytest.raises(ConfigError, match=r"unknown target 'jetson-agx-orn'; did you mean 'jetson-agx-orin-64gb'"):
        load_target("jetson-agx-orn")
    with pytest.raises(ConfigError, match=r"'zzzz'; valid targets: a100, arm64-cpu"):
        load_target("zzzz")


def base_yaml() -> dict:
    return yaml.safe_load((targets_dir() / "rtx-4090.yaml").read_text())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["sources"].pop("memory_bandwidth_gbs"), "no source for memory_bandwidth_gbs"),
    (lambda d: d.update(compute_capability="8.7"), "fp8 needs compute capability >= 8.9"),
    (lambda d: d.update(default_precision="int8", precisions=["fp16"]), "default_precision 'int8' is not in"),
    (lambda d: d["peak"].pop("fp8"), "precisions ['fp8'] have no peak"),
    (lambda d: d.update(dla_cores=2), "dla_cores is only for jetson"),
    (lambda d: d.update(sm_cont=1), "extra"),
    (lambda d: d["sources"].update(bogus="x"), "sources names unknown fields"),
])
def test_schema_rejects(change, message):
    data = base_yaml()
    change(data)
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Target.model_validate(data)


def test_file_name_must_match_and_errors_name_the_key(tmp_path, monkeypatch):
    data = base_yaml()
    (tmp_path / "my-gpu.yaml").write_text(yaml.safe_dump(data))
    data["memory_gib"] = "lots"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="name 'rtx-4090' must equal the file name 'my-gpu'"):
        load_target("my-gpu", tmp_path)
    with pytest.raises(ConfigError, match=r"broken.yaml: memory_gib:"):
        load_target("broken", tmp_path)
    monkeypatch.setenv("EDGEDISTILL_TARGETS", str(tmp_path))
    assert targets_dir() == tmp_path


@pytest.mark.parametrize(("version", "form"), [
    ("8.5.2", "plugin"), ("10.3", "plugin"), ("10.13.0.35", "plugin"), ("10.14", "native"), ("10.15.1", "native"),
    ("11.0", "native"), (None, "decomposed"),
])
def test_attention_form_by_tensorrt_version(version, form):
    assert attention_form(version) == form


def test_defaults_come_from_the_target():
    orin = target_defaults(load_target("jetson-agx-orin-64gb"))
    assert (orin.precision, orin.attention, orin.workspace_mib, orin.dla_core) == ("fp16", "plugin", 4096, None)
    assert target_defaults(load_target("h100")).attention == "native"
    assert target_defaults(load_target("jetson-agx-orin-64gb"), tensorrt="10.14.0").attention == "native"
    assert target_defaults(load_target("x86-64-avx2")).precision == "fp32"


def test_cli_views():
    from edgedistill.targets.show import describe_target, targets_table

    table = targets_table()
    assert len(table.splitlines()) == len(EXPECTED) + 1 and "jetson-agx-orin-64gb" in table
    text = describe_target("jetson-agx-orin-64gb")
    assert "sm_count              16" in text and "Technical Brief" in text
    assert "defaults: precision fp16, attention plugin, workspace 4096 MiB, DLA off" in text
    with pytest.raises(ConfigError, match="did you mean"):
        describe_target("agx-orn")
