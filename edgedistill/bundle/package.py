"""A device bundle: everything needed to build and benchmark the engine on the device itself.

    bundle/
      manifest.json        inputs/outputs (names, dtypes, shapes, profile), preprocessing, build flags, file hashes
      manifest.tsv         the same inputs/outputs, one per line, for the C++ runner
      model/model.onnx     (+ external data) and model/<tokenizer files>
      plugins/fused_attention/   the plugin sources as they are at packaging time (only if the graph uses it)
      runner/              the C++ runner sources (edgedistill/runner)
      build_engine.sh      trtexec with exactly the builder's flags
      bench.sh             trtexec timing + tegrastats power → results.json
      bench_summary.py     stdlib-only summariser bench.sh runs

All paths are relative. The folder is written as ``<out>.partial`` and renamed when complete; the tarball
``<out>.tar.gz`` is written through a temporary file.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgedistill.artifacts import atomic_write_json, atomic_write_text, sha256_path, stage_dir, umask_mode
from edgedistill.bundle.scripts import ONNX, PLUGIN_PLACEHOLDER, bench_script, build_script
from edgedistill.models.onnx_file import external_data_files
from edgedistill.models.tokenizer_files import PREPROCESSOR_FILES
from edgedistill.plugins import FUSED_ATTENTION_DIR
from edgedistill.targets import Target, load_target
from edgedistill.trt.facts import ModelFacts, read_facts
from edgedistill.trt.options import BuildOptions
from edgedistill.trt.plan import BuildPlan, plan_build
from edgedistill.trt.trtexec import trtexec_bench_args, trtexec_build_args

RUNNER_DIR = Path(__file__).resolve().parents[1] / "runner"
SUMMARY_SOURCE = Path(__file__).with_name("device_summary.py")


@dataclass(frozen=True)
class Bundle:
    folder: Path
    tarball: Path | None
    manifest: dict[str, Any]


def bundle_plan(facts: ModelFacts, target: Target, options: BuildOptions) -> BuildPlan:
    """The builder's plan, with the plugin library and timing cache as the device will have them."""
    device = options.model_copy(update={
        "plugin_library": Path(PLUGIN_PLACEHOLDER) if facts.uses_plugin else None,
        "timing_cache": Path("timing.cache"),
    })
    return plan_build(facts, target, device)


def preprocessing(model_dir: Path, facts: ModelFacts, copied: list[str]) -> dict[str, Any] | None:
    if not copied:
        return None
    max_length = facts.metadata.get("edgedistill.max_length")
    return {"kind": "tokenizer", "files": [f"model/{name}" for name in copied],
            "max_length": int(max_length) if max_length else None, "padding": "max_length or per batch",
            "task": facts.metadata.get("edgedistill.task")}


def io_entries(facts: ModelFacts, plan: BuildPlan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ranges = {p.name: p for p in plan.profiles}
    inputs = []
    for i in facts.inputs:
        entry: dict[str, Any] = {"name": i.name, "dtype": i.dtype, "shape": list(i.shape)}
        if i.name in ranges:
            p = ranges[i.name]
            entry.update(min=list(p.min), opt=list(p.opt), max=list(p.max))
        else:
            entry["opt"] = list(i.shape)
        inputs.append(entry)
    outputs = [{"name": o.name, "dtype": o.dtype, "shape": list(o.shape)} for o in facts.outputs]
    return inputs, outputs


def runner_table(inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> str:
    """``manifest.tsv``: ``input<TAB>name<TAB>dtype<TAB>1x128`` (opt shape) and ``output<TAB>name<TAB>dtype``."""
    rows = [f"input\t{i['name']}\t{i['dtype']}\t" + "x".join(map(str, i["opt"])) for i in inputs]
    rows += [f"output\t{o['name']}\t{o['dtype']}" for o in outputs]
    return "\n".join(rows) + "\n"


def copy_model(model: Path, dest: Path) -> list[str]:
    """Copy the ONNX file (+ external data) and the tokenizer files beside it; return the tokenizer names."""
    (dest / "model").mkdir(parents=True)
    shutil.copy2(model, dest / ONNX)
    for data in external_data_files(model):
        shutil.copy2(data, dest / "model" / data.name)
    copied = [name for name in PREPROCESSOR_FILES if (model.parent / name).is_file()]
    for name in copied:
        shutil.copy2(model.parent / name, dest / "model" / name)
    return copied


def write_contents(model: Path, spec: Target, facts: ModelFacts, plan: BuildPlan, dest: Path,
                   plugin_dir: Path) -> dict[str, Any]:
    copied = copy_model(model, dest)
    if plan.plugin_library:
        shutil.copytree(plugin_dir, dest / "plugins" / plugin_dir.name)
    if RUNNER_DIR.is_dir():
        shutil.copytree(RUNNER_DIR, dest / "runner", ignore=shutil.ignore_patterns("build", "*.o"))
    shutil.copy2(SUMMARY_SOURCE, dest / "bench_summary.py")
    for name, text in (("build_engine.sh", build_script(plan)), ("bench.sh", bench_script(plan))):
        atomic_write_text(dest / name, text)
        os.chmod(dest / name, 0o755)
    inputs, outputs = io_entries(facts, plan)
    atomic_write_text(dest / "manifest.tsv", runner_table(inputs, outputs))
    manifest = {
        "format": 1, "target": spec.name, "display_name": spec.display_name, "jetpack": spec.jetpack,
        "tensorrt": plan.tensorrt, "precision": plan.precision, "attention": plan.attention,
        "model": ONNX, "onnx_sha256": sha256_path(model), "inputs": inputs, "outputs": outputs,
        "preprocessing": preprocessing(model.parent, facts, copied),
        "build": {"engine": "model.engine", "trtexec": trtexec_build_args(plan, ONNX, "model.engine")},
        "bench": {"trtexec": trtexec_bench_args(plan, "model.engine", "trtexec_times.json"),
                  "results": "results.json"},
        "files": {str(p.relative_to(dest)): sha256_path(p) for p in sorted(dest.rglob("*")) if p.is_file()},
    }
    atomic_write_json(dest / "manifest.json", manifest)
    return manifest


def make_tarball(folder: Path) -> Path:
    """``<folder>.tar.gz`` holding ``<folder name>/...`` (written to a temporary name, then renamed)."""
    tarball = folder.with_name(folder.name + ".tar.gz")
    fd, tmp = tempfile.mkstemp(prefix=f".{tarball.name}.", dir=folder.parent)
    os.fchmod(fd, umask_mode())  # mkstemp's 0600 would make the bundle private to its maker
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(folder, arcname=folder.name)
        os.replace(tmp, tarball)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return tarball


def package(model: Path, target: str, out: Path, options: BuildOptions | None = None, tarball: bool = True,
            plugin_dir: Path = FUSED_ATTENTION_DIR) -> Bundle:
    """Write a device bundle for the ONNX file ``model`` and ``target`` into the folder ``out``.

    Raises:
        ConfigError: unknown target, a CPU target, or build options the target cannot honour.
        InputError: the model is not valid ONNX or has an op the target's TensorRT cannot import.
    """
    options = options or BuildOptions()
    spec = load_target(target)
    facts = read_facts(model)
    plan = bundle_plan(facts, spec, options)
    with stage_dir(out, keep_partial=False) as dest:
        shutil.rmtree(dest)
        dest.mkdir()
        manifest = write_contents(model, spec, facts, plan, dest, plugin_dir)
    return Bundle(out, make_tarball(out) if tarball else None, manifest)
