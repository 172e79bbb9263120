"""The public Python API. Every CLI command is a thin wrapper over one of these functions.

Each function writes only into its own stage folder under ``out`` (a run directory), records the stage
in ``out/manifest.json``, and skips the work when config and inputs are unchanged (``force=True`` redoes it).
Models can come from a run directory (the previous stage's output) or from plain paths, so a user can
enter the pipeline anywhere — e.g. bring their own ONNX file to :func:`quantize` and :func:`bench`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.artifacts import MANIFEST, Artifact, read_manifest, sha256_json
from edgedistill.config import (
    BenchConfig,
    Calibrated,
    DynamicInt8,
    EvaluateConfig,
    ExportConfig,
    FuseConfig,
    PipelineConfig,
    QuantizeStep,
    load_config,
)
from edgedistill.errors import InputError
from edgedistill.models.onnx_file import onnx_metadata
from edgedistill.run_lock import run_lock
from edgedistill.rundir import RunDir, dump, open_run_dir, relocate

if TYPE_CHECKING:
    import numpy as np

    from edgedistill.estimate.roofline import Estimate
    from edgedistill.quantize.data import QadData, QuantizeData
    from edgedistill.trt.options import BuildOptions

DEFAULT_TASK = "sentence-embedding"


def as_config(config: PipelineConfig | str | Path) -> PipelineConfig:
    return config if isinstance(config, PipelineConfig) else load_config(config)


def is_run_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def onnx_task(path: Path) -> str:
    """The task recorded in an ONNX file's metadata by our exporter, else the default."""
    return onnx_metadata(path).get("edgedistill.task", DEFAULT_TASK)


def check_bench_shapes(artifact: Artifact, cfg: BenchConfig) -> None:
    """Refuse shapes outside the dynamic range an ONNX file was exported (and verified) for.

    Raises:
        InputError: naming the shape, the axis and the exported range.
    """
    from edgedistill.config import DynamicAxes, check_shape_in_range

    meta = onnx_metadata(artifact.path) if artifact.kind == "onnx" else {}
    if "edgedistill.batch_range" not in meta:
        return
    ranges = {k: meta[f"edgedistill.{k}_range"].split(",") for k in ("batch", "sequence")
              if f"edgedistill.{k}_range" in meta}  # an image model has no sequence axis
    dynamic = DynamicAxes.model_validate(ranges)
    for shape in cfg.shapes:
        try:
            check_shape_in_range(shape, dynamic, where=f"{artifact.name} ({artifact.path.name}): shape {shape.label}")
        except ValueError as err:
            raise InputError(str(err).replace("widen export.dynamic", "re-export with a wider range")) from None


def artifact_from_path(path: Path, task: str | None = None, name: str | None = None) -> Artifact:
    """An :class:`Artifact` for a plain path: an ``.onnx`` file or a Hugging Face model folder.

    Raises:
        InputError: the path does not exist or is neither.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"model not found: {path}")
    if path.is_file():
        if path.suffix != ".onnx":
            raise InputError(f"{path}: expected an .onnx file or a Hugging Face model folder")
        label = name or (path.parent.name if path.stem == "model" else path.stem)
        return Artifact(label, "onnx", path, task or onnx_task(path))
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model folder (no config.json) and not a run directory")
    return Artifact(name or path.name, "hf", path, task or DEFAULT_TASK)


def stage_artifacts(run_dir: Path) -> dict[str, list[Artifact]]:
    """The artifacts a run directory holds, by the stage that made them, read from its manifest."""
    found: dict[str, list[Artifact]] = {}
    for stage, entry in read_manifest(run_dir)["stages"].items():
        for item in entry.get("metrics", {}).get("artifacts", []):
            found.setdefault(stage, []).append(Artifact(item["name"], item["kind"], run_dir / item["path"],
                                                        item["task"], item.get("meta", {})))
    return found


def run_artifacts(run_dir: Path) -> dict[str, Artifact]:
    """The artifacts a run directory holds, by name."""
    return {a.name: a for made in stage_artifacts(run_dir).values() for a in made}


def pick(model: Path | Artifact, stages: tuple[str, ...], task: str | None = None) -> Artifact:
    """Resolve ``model``: an Artifact, a plain path, or a run directory — then the output of the first of
    ``stages`` that ran there (the student of distill, the ONNX file of export or fuse), however it was named
    (an export of ``models/bert`` is ``bert-onnx``).

    Raises:
        InputError: the path is no model, or none of the stages has run in the run directory.
    """
    if isinstance(model, Artifact):
        return model
    model = Path(model)
    if not (model.is_dir() and is_run_dir(model)):
        return artifact_from_path(model, task)
    made = stage_artifacts(model)
    for stage in stages:
        if stage in made:
            trained = [a for a in made[stage] if not a.name.endswith("-untrained")]
            return (trained or made[stage])[0]
    raise InputError(f"run directory {model} has no output of {' or '.join(stages)} yet; run "
                     f"`edgedistill {stages[-1]}` there first")


def artifact_entry(artifact: Artifact, root: Path) -> dict[str, Any]:
    return {"name": artifact.name, "kind": artifact.kind, "task": artifact.task,
            "path": str(artifact.path.relative_to(root)), "meta": artifact.meta}


def distill(config: PipelineConfig | str | Path, out: Path, force: bool = False) -> Artifact:
    """Distil the configured teacher into a student; returns the student (a Hugging Face folder).

    Raises:
        ConfigError, InputError: bad config or data, before any training.
    """
    from edgedistill.distill import stage
    from edgedistill.distill.distributed import current_world

    cfg = as_config(config)
    world = current_world()  # under torchrun: every rank runs this, rank 0 writes
    run = RunDir(out, force)
    section = {k: dump(getattr(cfg, k)) for k in ("teacher", "student", "data", "distill")}
    inputs = {"teacher": cfg.teacher.path} if cfg.teacher.path is not None else {}

    def work(partial: Path) -> dict[str, Any]:
        metrics = stage.run(cfg, partial, cache_dir=run.root / "cache", refresh_cache=force)
        made = [Artifact("student-untrained", "hf", partial / "untrained", cfg.teacher.task),
                Artifact("student", "hf", partial / "student", cfg.teacher.task)]
        metrics["artifacts"] = [artifact_entry(relocate(a, partial, run.path("distill")), run.root) for a in made]
        return metrics

    run.stage("distill", section, inputs, ["student", "untrained", stage.HELDOUT], work, world)
    return run_artifacts(run.root)["student"]


def export(model: Path | Artifact, out: Path, config: ExportConfig | None = None, task: str | None = None,
           force: bool = False, bisect: bool = False, fuse_form: str | None = None) -> Artifact:
    """Export a Hugging Face model (or a run's student) to ONNX with its task head, verified against torch.

    ``bisect``: also compare every module's output with torch and name the first that differs.
    ``fuse_form``: the attention form fused afterwards, which decides ``opset: auto``.

    Raises:
        VerificationError: ONNX Runtime and torch disagree beyond tolerance (nothing is written).
    """
    from edgedistill.export import stage as onnx_export
    from edgedistill.export.opset import opset_for_form

    source = pick(model, ("distill",), task)
    cfg = config or ExportConfig()
    if cfg.opset == "auto":
        cfg = cfg.model_copy(update={"opset": opset_for_form(fuse_form)})
    run = RunDir(out, force)
    name = f"{source.name}-onnx"

    def work(partial: Path) -> dict[str, Any]:
        made = onnx_export.run(cfg, source, partial, bisect=bisect)
        made = Artifact(name, made.kind, made.path, made.task, made.meta)
        entry = artifact_entry(relocate(made, partial, run.path("export")), run.root)
        return {"artifacts": [entry], "verification": made.meta.get("verification")}

    run.stage("export", dump(cfg), {"model": source.path}, ["model.onnx"], work)
    return run_artifacts(run.root)[name]


def fuse(model: Path | Artifact, out: Path, config: FuseConfig | None = None, task: str | None = None,
         force: bool = False) -> Artifact:
    """Fuse attention in an ONNX model (or a run's export); the result is verified against the unfused graph.

    Raises:
        VerificationError: fused and unfused outputs differ beyond tolerance (nothing is published).
        InputError: not an ONNX model, or the form needs a newer opset.
    """
    from edgedistill.fuse import stage as fusion

    source = pick(model, ("export",), task)
    cfg = config or FuseConfig()
    run = RunDir(out, force)
    name = f"{base_name(source)}-fused"

    def work(partial: Path) -> dict[str, Any]:
        made = fusion.run(cfg, source, partial)
        made = Artifact(name, made.kind, made.path, made.task, made.meta)
        entry = artifact_entry(relocate(made, partial, run.path("fuse")), run.root)
        return {"artifacts": [entry], "attention": made.meta.get("attention"),
                "verification": made.meta.get("verification")}

    metrics = run.stage("fuse", dump(cfg), {"model": source.path}, [fusion.ONNX_NAME], work)
    attention = metrics.get("attention") or {}
    if attention.get("fused", 0) < attention.get("found", 0):
        from edgedistill.progress import console

        reasons = attention.get("skipped") or [{"reason": "see fuse/fusion.json"}]
        console.print(f"[yellow]warning:[/yellow] fuse: {attention['fused']} of {attention['found']} attention "
                      f"blocks fused in {name}; the others stay as exported ({reasons[0]['reason']})",
                      highlight=False)
    return run_artifacts(run.root)[name]


def base_name(artifact: Artifact) -> str:
    """``student`` for ``student-onnx`` and ``student-fused``: the model the ONNX file was made from."""
    return artifact.name.removesuffix("-fused").removesuffix("-onnx")


def onnx_source(model: Path | Artifact, what: str) -> Artifact:
    """The ONNX file a device stage starts from: a file, an artifact, or a run directory's fused (else exported)
    model.

    Raises:
        InputError: no ONNX model there.
    """
    source = pick(model, ("fuse", "export"))
    if source.kind != "onnx":
        raise InputError(f"{what} takes an ONNX model; {source.path} is a {source.kind} artifact — export it first")
    return source


def build(model: Path | Artifact, target: str, out: Path, options: BuildOptions | None = None, force: bool = False,
          build_fn: Any = None) -> Artifact:
    """Build a TensorRT engine (+ sidecar) for ``target`` on this machine's GPU, into ``out/build/``.

    Raises:
        ConfigError: unknown target, a choice it cannot honour, or a GPU other than the target's.
        InputError, MissingDependencyError: see :func:`edgedistill.trt.builder.build`.
    """
    from edgedistill.trt import stage as build_stage
    from edgedistill.trt.builder import build_serialized
    from edgedistill.trt.options import BuildOptions

    source = onnx_source(model, "build")
    opts = options or BuildOptions()
    run = RunDir(out, force)
    inputs = {"model": source.path} | ({"plugin": opts.plugin_library} if opts.plugin_library else {})

    def work(partial: Path) -> dict[str, Any]:
        made = build_stage.run(opts, target, source, partial, build_fn or build_serialized)
        return {"artifacts": [artifact_entry(relocate(made, partial, run.path("build")), run.root)]}

    run.stage("build", {"target": target, "options": dump(opts)}, inputs, ["model.engine", "model.engine.json"], work)
    return run_artifacts(run.root)[f"{source.name}-{target}"]


def package(model: Path | Artifact, target: str, out: Path, options: BuildOptions | None = None,
            force: bool = False) -> Artifact:
    """A device bundle for ``target`` (``out/package/bundle/`` + ``bundle.tar.gz``): the ONNX file, the plugin
    sources when the graph uses them, the runner and the scripts that build and benchmark on the device.

    Raises:
        ConfigError: unknown target, a CPU target, or build options the target cannot honour.
        InputError: not an ONNX model, or an op the target's TensorRT cannot import.
    """
    from edgedistill.bundle import stage as package_stage
    from edgedistill.trt.options import BuildOptions

    source = onnx_source(model, "package")
    opts = options or BuildOptions()
    run = RunDir(out, force)

    def work(partial: Path) -> dict[str, Any]:
        made = package_stage.run(opts, target, source, partial)
        return {"artifacts": [artifact_entry(relocate(made, partial, run.path("package")), run.root)]}

    outputs = [package_stage.FOLDER, f"{package_stage.FOLDER}.tar.gz"]
    run.stage("package", {"target": target, "options": dump(opts)}, {"model": source.path}, outputs, work)
    return run_artifacts(run.root)[f"{source.name}-bundle-{target}"]


def estimate(model: Path | Artifact, target: str, precision: str | None = None, dims: dict[str, int] | None = None,
             out: Path | None = None, force: bool = False) -> Estimate:
    """The roofline estimate of an ONNX model on ``target`` — an ESTIMATE, never a measurement; recorded in
    ``out/estimate/estimate.json`` (a manifest row) when ``out`` is given.

    Raises:
        ConfigError: unknown target or precision. InputError: not an ONNX model, an unsized or unknown dimension.
    """
    from edgedistill.artifacts import atomic_write_json
    from edgedistill.estimate import estimate as run_estimate

    source = onnx_source(model, "estimate")
    found = run_estimate(source.path, target, precision, dims)
    if out is not None:
        run = RunDir(out, force)

        def work(partial: Path) -> dict[str, Any]:
            atomic_write_json(partial / "estimate.json", found.to_dict())
            return {"estimate": {k: v for k, v in found.to_dict().items() if k != "top_nodes"}}

        section = {"target": target, "precision": precision, "dims": dims or {}}
        run.stage("estimate", section, {"model": source.path}, ["estimate.json"], work)
    return found


def quantize(model: Path | Artifact, out: Path, steps: list[QuantizeStep] | None = None, task: str | None = None,
             force: bool = False, data: QuantizeData | None = None) -> list[Artifact]:
    """Quantize an ONNX model (or a run's export/fuse output) with each step; returns the quantized artifacts.

    ``data`` carries calibration texts (static-int8, trt-int8) and evaluation texts / STS pairs (sensitivity,
    accuracy budget); dynamic-int8 and fp16 need none.

    Raises:
        InputError: a step needs data that was not given, too few calibration texts, an already-quantized model.
    """
    from edgedistill.quantize import stage as quantize_stage

    source = pick(model, ("fuse", "export"), task)
    steps = [DynamicInt8()] if steps is None else steps
    if not steps:
        return []
    run = RunDir(out, force)
    names = [f"{base_name(source)}-{s.label}" for s in steps]

    def work(partial: Path) -> dict[str, Any]:
        entries = []
        for step, name in zip(steps, names):
            made = quantize_stage.run(step, source, partial / step.label, data)
            made = Artifact(name, made.kind, made.path, made.task, made.meta)
            entries.append(artifact_entry(relocate(made, partial, run.path("quantize")), run.root))
        return {"artifacts": entries}

    section = {"steps": dump(steps), "data": data_fingerprint(data)}
    run.stage("quantize", section, {"model": source.path}, [f"{s.label}/model.onnx" for s in steps], work)
    found = run_artifacts(run.root)
    return [found[n] for n in names]


def data_fingerprint(data: QuantizeData | None) -> str | None:
    """A hash of the texts a quantization step saw, so new calibration or eval texts redo the stage."""
    if data is None:
        return None
    from edgedistill.data.corpus import texts_hash

    sts = (data.sts.sentences1, data.sts.sentences2, data.sts.scores.tolist()) if data.sts is not None else None
    qad = [str(data.qad.student), texts_hash(data.qad.texts), dump(data.qad.losses)] if data.qad else None
    return sha256_json([data.calibration_texts, data.eval_texts, sts, data.max_length, qad])


def needs_data(step: QuantizeStep) -> bool:
    """Whether a step needs calibration or evaluation data: every calibrated mode does."""
    return isinstance(step, Calibrated)


def pipeline_quantize_data(cfg: PipelineConfig, out: Path) -> QuantizeData:
    """Calibration texts from the training texts (never the held-out ones), evaluation on the held-out texts
    and the eval (dev) STS pairs — the test split is never used for a choice."""
    from edgedistill.data.corpus import load_train_texts, split_holdout
    from edgedistill.data.stsb import read_sts
    from edgedistill.quantize.data import QuantizeData

    train, heldout = split_holdout(load_train_texts(cfg.data.train), cfg.data.holdout, cfg.distill.seed)
    size = max(s.calibration_size for s in cfg.quantize if isinstance(s, Calibrated))
    qad = qad_data(cfg, out, train, heldout) if any(s.mode == "qad-int8" for s in cfg.quantize) else None
    return QuantizeData(calibration_texts=train[:size], eval_texts=heldout,
                        sts=read_sts(cfg.data.eval.path) if cfg.data.eval and cfg.data.eval.source == "stsb" else None,
                        cache_dir=out / "cache" / "calibration", max_length=cfg.evaluate.max_length,
                        threads=cfg.bench.threads, qad=qad)


def array_hash(array: np.ndarray) -> str:
    import hashlib

    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def stored_teacher_outputs(cfg: PipelineConfig, out: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(training texts, held-out texts, the teacher's outputs for both in that order), read from the label store
    the distill stage filled — the teacher is not asked again for anything stored."""
    from edgedistill.data.corpus import load_train_texts, split_holdout
    from edgedistill.distill.stage import label_with_teacher
    from edgedistill.models.teachers import load_teacher

    train, heldout = split_holdout(load_train_texts(cfg.data.train), cfg.data.holdout, cfg.distill.seed)
    targets = label_with_teacher(cfg, load_teacher(cfg.teacher, cfg.distill.max_length), train + heldout,
                                 out / "cache")
    return train, heldout, targets


def teacher_artifact(cfg: PipelineConfig) -> Artifact | None:
    """The teacher as the evaluate and bench stages run it: a Hugging Face folder or an ONNX file; None for a
    recorded or HTTP teacher (its outputs come from the label store; there is nothing local to time)."""
    t = cfg.teacher
    if t.source == "huggingface" and t.path is not None:
        return Artifact("teacher", "hf", t.path, t.task)
    if t.source == "onnx" and t.path is not None:
        return Artifact("teacher", "onnx", t.path, t.task, {"tokenizer": str(t.tokenizer)} if t.tokenizer else {})
    return None


def qad_data(cfg: PipelineConfig, out: Path, train: list[str], heldout: list[str]) -> QadData:
    """What quantization-aware distillation trains from: the float student, the training texts and the teacher's
    outputs for them — read from the label store the distill stage filled, so the teacher does not run again."""
    from edgedistill.quantize.data import QadData, default_qad_losses

    _, _, targets = stored_teacher_outputs(cfg, out)
    losses = [s for s in cfg.distill.losses if not s.white_box] or default_qad_losses()
    return QadData(student=out / "distill" / "student", texts=train, teacher_outputs=targets[: len(train)],
                   losses=losses, seed=cfg.distill.seed)


def evaluate(models: list[Artifact], out: Path, teacher: Artifact | None, heldout: list[str],
             sets: dict[str, Any], config: EvaluateConfig | None = None, force: bool = False,
             reference: np.ndarray | None = None) -> dict[str, Any]:
    """Measure every model the same way, with its Task's metrics: fidelity to ``teacher`` on ``heldout`` samples,
    the task metric on each scored set (``sets``: name → ``data.eval``-style config, e.g. STS pairs).

    ``reference``: the teacher's outputs for ``heldout`` when there is no ``teacher`` artifact to run (a recorded
    or HTTP teacher: its stored labels).
    """
    from edgedistill.evaluate import stage as evaluate_stage

    cfg = config or EvaluateConfig()
    run = RunDir(out, force)
    inputs = {a.name: a.path for a in models} | {f"data_{k}": s.path for k, s in sets.items()}
    section = {"evaluate": dump(cfg), "heldout": len(heldout), "teacher": teacher.name if teacher else None,
               "sets": {k: dump(s) for k, s in sets.items()},
               "reference": None if reference is None else array_hash(reference)}

    def work(partial: Path) -> dict[str, Any]:
        return evaluate_stage.run(cfg, models, partial, teacher, heldout, sets, reference)

    return run.stage("evaluate", section, inputs, [evaluate_stage.METRICS], work)


def bench(models: Sequence[Path | Artifact], out: Path, config: BenchConfig | None = None, task: str | None = None,
          force: bool = False) -> dict[str, Any]:
    """Benchmark models side by side in one run (same inputs, same threads); writes ``bench/results.json``.

    Raises:
        InputError: a model is missing or not a model, or a shape lies outside an ONNX model's fixed dims.
    """
    from edgedistill.bench import runner

    cfg = config or BenchConfig()
    artifacts = [pick(m, ("distill",), task) for m in models]
    for artifact in artifacts:
        check_bench_shapes(artifact, cfg)
    run = RunDir(out, force)
    inputs = {a.name: a.path for a in artifacts}
    return run.stage("bench", dump(cfg), inputs, ["results.json"],
                     lambda partial: summarize_bench(runner.run(cfg, artifacts, partial)))


def summarize_bench(results: dict[str, Any]) -> dict[str, Any]:
    return {"p50_ms": {f"{r['artifact']}@{r['shape']}": r["p50_ms"] for r in results["results"]}}


def report(run_dir: Path) -> dict[str, Any]:
    """Write ``report.md``, ``report.json`` and ``report.png`` into ``run_dir`` from its evaluate and bench results."""
    from edgedistill.report import run as write_report

    return write_report(Path(run_dir))


def run(config: PipelineConfig | str | Path, out: Path, force: bool = False) -> dict[str, Any]:
    """The whole pipeline from one config: distill → export → fuse → quantize → evaluate → bench → report.

    Raises:
        InputError: another process is working in ``out``.
    """
    cfg = as_config(config)
    out = open_run_dir(out)
    with run_lock(out):
        return run_stages(cfg, out, force)


def run_stages(cfg: PipelineConfig, out: Path, force: bool) -> dict[str, Any]:
    """The stages of :func:`run`, in order, inside ``out`` (whose lock the caller holds)."""
    from edgedistill.distill.stage import HELDOUT

    student = distill(cfg, out, force)
    onnx_model = export(student, out, cfg.export, force=force, fuse_form=cfg.fuse.form if cfg.fuse else None)
    deployed = fuse(onnx_model, out, cfg.fuse, force=force) if cfg.fuse is not None else onnx_model
    data = pipeline_quantize_data(cfg, out) if any(needs_data(s) for s in cfg.quantize) else None
    quantized = quantize(deployed, out, cfg.quantize, force=force, data=data)
    onnx_models = [onnx_model, deployed] if deployed is not onnx_model else [onnx_model]
    found = run_artifacts(out)
    teacher = teacher_artifact(cfg)
    heldout = (out / "distill" / HELDOUT).read_text(encoding="utf-8").splitlines()
    reference = None if teacher is not None else stored_teacher_outputs(cfg, out)[2][-len(heldout):]
    sets = {k: s for k, s in (("eval", cfg.data.eval), ("test", cfg.data.test)) if s is not None}
    ours = [found["student-untrained"], student, *onnx_models, *quantized]
    evaluate([teacher, *ours] if teacher else ours, out, teacher, heldout, sets, cfg.evaluate, force, reference)
    backends = set(cfg.bench.backends)
    benched = [a for a in ([teacher] if teacher else []) + [student, *onnx_models, *quantized]
               if (a.kind == "hf" and "torch" in backends) or (a.kind == "onnx" and "onnxruntime" in backends)]
    bench(benched, out, cfg.bench, force=force)
    return report(out)
