"""spec.json, the C++ side (generated header compiled into the library) and the Python ctypes mirror agree."""

from __future__ import annotations

import re

from edgedistill.plugins import FUSED_ATTENTION_DIR, fused_attention_spec, loader


def test_compiled_identity_matches_spec(kernel_lib):
    spec = fused_attention_spec()
    assert kernel_lib.edfa_spec_name().decode() == spec["name"]
    assert kernel_lib.edfa_spec_version().decode() == spec["version"]
    assert kernel_lib.edfa_spec_namespace().decode() == spec["namespace"]


def test_compiled_fields_match_spec(kernel_lib):
    fields = fused_attention_spec()["fields"]
    assert kernel_lib.edfa_spec_field_count() == len(fields)
    compiled = [
        (kernel_lib.edfa_spec_field_name(i).decode(), kernel_lib.edfa_spec_field_type(i).decode())
        for i in range(len(fields))
    ]
    assert compiled == [(f["name"], f["type"]) for f in fields]


def test_kernel_accepts_exactly_the_spec_head_sizes(kernel_lib):
    spec_sizes = fused_attention_spec()["supported_head_sizes"]
    compiled = [kernel_lib.edfa_spec_head_size(i) for i in range(kernel_lib.edfa_spec_head_size_count())]
    assert compiled == spec_sizes
    accepted = [
        d for d in range(1, 257)
        if kernel_lib.edfa_validate(loader.EdfaProblem(1, 1, 1, 1, d, 0, 0, 0, 0.0)) == 0
    ]
    assert accepted == spec_sizes


def test_ctypes_problem_mirrors_the_c_struct():
    header = (FUSED_ATTENTION_DIR / "attention_api.h").read_text()
    body = re.search(r"typedef struct EdfaProblem\s*\{(.*?)\}", header, re.S)
    assert body is not None
    c_fields = re.findall(r"(int32_t|float)\s+(\w+);", body.group(1))
    py_fields = [(name, ctype.__name__) for name, ctype in loader.EdfaProblem._fields_]
    assert [n for _, n in c_fields] == [n for n, _ in py_fields]
    assert [{"int32_t": "c_int", "float": "c_float"}[t] for t, _ in c_fields] == [t for _, t in py_fields]


def test_plugin_sources_take_names_from_the_generated_header():
    """No hand-written copy of the plugin's name, version, namespace or field names in the C++ plugin."""
    spec = fused_attention_spec()
    source = "\n".join(
        (FUSED_ATTENTION_DIR / name).read_text() for name in ("fused_attention_plugin.h", "fused_attention_plugin.cpp")
    )
    literals = set(re.findall(r'"([^"\\]*)"', source))
    names = {spec["name"], spec["namespace"], *(f["name"] for f in spec["fields"])}
    assert not names & literals, f"hard-coded spec names in the plugin: {names & literals}"
    assert "spec::kName" in source and "spec::kFieldNames" in source
