"""The ``fuse`` stage: an exported ONNX model in, the attention-fused model out, verified before it is published.

``out/model.onnx`` appears only after the fused graph has matched the unfused one within ``atol`` in ONNX
Runtime (forms ONNX Runtime runs) or passed the structural check against the plugin spec (``trt-plugin``);
``out/fusion.json`` always records what was found, fused and skipped, and the verification.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from edgedistill import verification
from edgedistill.artifacts import Artifact, atomic_write_json, staging_dir
from edgedistill.config import FuseConfig
from edgedistill.errors import InputError, VerificationError
from edgedistill.fuse import fuse_attention, pack_qkv
from edgedistill.fuse.forms import plugin_problems
from edgedistill.fuse.ort_passes import ort_extended_fusions
from edgedistill.fuse.unpadded_fast_path import add_unpadded_fast_path, with_gate
from edgedistill.fuse.verify import REFERENCE, compare_graphs
from edgedistill.models.onnx_file import ONNX_NAME, check_onnx_file, onnx_size_mb, publish_onnx, save_onnx
from edgedistill.models.tokenizer_files import copy_preprocessor_files
from edgedistill.progress import console

REPORT_NAME = "fusion.json"


def fuse_file(cfg: FuseConfig, src: Path, dst: Path) -> dict[str, Any]:
    """Fuse ``src`` into ``dst`` (no verification); returns the fusion counts.

    Raises:
        InputError: the file is no valid ONNX model, the form needs a newer opset, or ``require_all`` and
            some block stayed unfused.
    """
    model = check_onnx_file(src)
    external = with_external_data(model, src)
    counts = [c.as_dict() for c in fuse_attention(model, cfg.form)]
    check_all_fused(cfg, counts, "attention at ")
    packing = pack_qkv(model).as_dict() if cfg.form == "ort" and cfg.pack_qkv else None
    fast_path = (add_unpadded_fast_path(model, cfg.unpadded_min_scores)
                 if cfg.form == "ort" and cfg.unpadded_fast_path else None)
    save_onnx(model, dst, external)
    extra: dict[str, int] = {}
    if cfg.ort_fusions and cfg.form == "ort":
        optimised = dst.with_name(f"ort_{dst.name}")
        extra = ort_extended_fusions(dst, optimised)
        optimised.replace(dst)
    return {"form": cfg.form, "attention": counts, "qkv_packing": packing, "unpadded_fast_path": fast_path,
            "ort_fusions": extra}


def check_all_fused(cfg: FuseConfig, counts: list[dict[str, Any]], what: str = "") -> None:
    """With ``require_all``: InputError naming the first block a pass left unfused, and why."""
    if cfg.require_all and (skipped := [s for c in counts for s in c["skipped"]]):
        raise InputError(f"{what}'{skipped[0]['node']}' was not fused: {skipped[0]['reason']}")


def has_external_data(model: onnx.ModelProto) -> bool:
    return any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer)


def with_external_data(model: onnx.ModelProto, path: Path) -> bool:
    """Load the weights ``model`` (read from ``path`` without them) keeps in external files; whether it had any."""
    external = has_external_data(model)
    if external:
        onnx.load_external_data_for_model(model, str(path.parent))
    return external


def verify_fused(cfg: FuseConfig, unfused: Path, fused: Path) -> dict[str, Any]:
    """Numbers against the unfused graph (ONNX Runtime forms) or the structural plugin check (``trt-plugin``).

    With the unpadded fast path gated on B·S², the verification batches are too small to take the flash branch,
    so a twin of the fused file with the gate at 0 is compared too; its rows are labelled "(flash branch)".
    """
    if cfg.form == "trt-plugin":
        problems = plugin_problems(onnx.load(str(fused), load_external_data=False))
        return {"reference": "plugin spec (structural)", "problems": problems, "passed": not problems}
    report = compare_graphs(unfused, fused, cfg.atol, cfg.min_cosine)
    if not (cfg.form == "ort" and cfg.unpadded_fast_path and cfg.unpadded_min_scores > 0):
        return report
    twin = onnx.load(str(fused), load_external_data=False)
    external = with_external_data(twin, fused)
    if with_gate(twin, 0):
        path = fused.with_name(f"flash_{fused.name}")
        save_onnx(twin, path, external)
        flash = compare_graphs(unfused, path, cfg.atol, cfg.min_cosine)
        rows = [{**r, "shape": f"{r['shape']} (flash branch)"} for r in flash["results"]]
        report = verification.report(report["results"] + rows, cfg.atol, cfg.min_cosine, REFERENCE)
    return report


def run(cfg: FuseConfig, model: Artifact, out: Path) -> Artifact:
    """Fuse the attention of an ONNX artifact into ``out/model.onnx``, verified.

    Returns:
        The fused ONNX artifact; ``meta`` holds the counts (found / fused / skipped), the verification summary
        and the size.
    Raises:
        InputError: not an ONNX artifact, or see :func:`fuse_file`.
        VerificationError: the fused graph disagrees with the unfused one (names the output and shape), or a
            plugin node does not match the spec. ``out/model.onnx`` is then not written.
    """
    if model.kind != "onnx":
        raise InputError(f"fuse takes an ONNX model; '{model.name}' is a {model.kind} artifact (run export first)")
    with staging_dir(out, "fuse") as staging:
        report = fuse_file(cfg, model.path, staging / ONNX_NAME)
        report["verification"] = verify_fused(cfg, model.path, staging / ONNX_NAME)
        atomic_write_json(out / REPORT_NAME, report)
        if not report["verification"]["passed"]:
            problems = report["verification"].get("problems")
            if problems:
                raise VerificationError(problems[0])
            verification.check(report["verification"], "the fused graph")
        publish_onnx(staging / ONNX_NAME, out / ONNX_NAME)
    copy_preprocessor_files(model.path.parent, out)
    summary = verification.summary(report["verification"]) | {
        k: v for k, v in report["verification"].items() if k == "problems"}
    meta = {
        "form": cfg.form, "attention": summarise_counts(report["attention"]), "verification": summary,
        "qkv_packed": report["qkv_packing"]["fused"] if report["qkv_packing"] else 0,
        "unpadded_fast_path": sum(c["fused"] for c in (report["unpadded_fast_path"] or {}).values()),
        "size_mb": onnx_size_mb(out / ONNX_NAME),
    }
    return Artifact(name=f"{model.base_name}-fused", kind="onnx", path=out / ONNX_NAME, task=model.task, meta=meta)


def warn_unfused(fused: Artifact) -> None:
    """Say on the console when some attention blocks of ``fused`` stayed as exported, with the first reason."""
    attention = fused.meta.get("attention") or {}
    if attention.get("fused", 0) < attention.get("found", 0):
        reasons = attention.get("skipped") or [{"reason": f"see {REPORT_NAME}"}]
        console.print(f"[yellow]warning:[/yellow] fuse: {attention['fused']} of {attention['found']} attention "
                      f"blocks fused in {fused.name}; the others stay as exported ({reasons[0]['reason']})",
                      highlight=False)


def summarise_counts(counts: list[dict[str, Any]]) -> dict[str, Any]:
    """Found / fused totals, fused blocks per pattern, and skip reasons, over all attention fusions."""
    patterns: dict[str, int] = {}
    for c in counts:
        for name, n in c["patterns"].items():
            patterns[name] = patterns.get(name, 0) + n
    return {
        "found": sum(c["found"] for c in counts), "fused": sum(c["fused"] for c in counts), "patterns": patterns,
        "skipped": [s for c in counts for s in c["skipped"]],
    }
