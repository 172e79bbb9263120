"""The public Python API. Every CLI command is a thin wrapper over one of these functions.

Each function writes only into its own stage folder under ``out`` (a run directory), records the stage
in ``out/manifest.json``, and skips the work when config and inputs are unchanged (``force=True`` redoes it).
Models can come from a run directory (the previous stage's output) or from plain paths, so a user can
enter the pipeline anywhere — e.g. bring their own ONNX file to :func:`quantize` and :func:`bench`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill.artifacts import Artifact
from edgedistill.config import (
    BenchConfig,
    DynamicInt8,
    EvaluateConfig,
    ExportConfig,
    FuseConfig,
    PipelineConfig,
    QuantizeStep,
    load_config,
)
from edgedistill.models.onnx_file import ONNX_NAME
from edgedistill.pipeline_data import (
    array_hash,
    data_fingerprint,
    needs_data,
    pipeline_lm_quantize_data,
    pipeline_quantize_data,
    stored_teacher_outputs,
    teacher_artifact,
)
from edgedistill.resolve import artifact_from_path, onnx_source, pick
from edgedistill.run_lock import run_lock
from edgedistill.rundir import RunDir, dump, open_run_dir, run_artifacts

if TYPE_CHECKING:
    import numpy as np

    from edgedistill.estimate.roofline import Estimate
    from edgedistill.quantize.data import QuantizeData
    from edgedistill.trt.options import BuildOptions

__all__ = ["artifact_from_path", "bench", "build", "distill", "estimate", "evaluate", "export", "fuse", "package",
           "pick", "quantize", "report", "run", "search", "ship"]


def as_config(config: PipelineConfig | str | Path) -> PipelineConfig:
    return config if isinstance(config, PipelineConfig) else load_config(config)


def distill(config: PipelineConfig | str | Path, out: Path, force: bool = False,
            cache_dir: Path | None = None, stop_after: int | None = None) -> Artifact:
    """Distil the configured teacher into a student; returns the student (a Hugging Face folder).

    ``cache_dir``: the teacher-label store (default ``out/cache``); a search's candidates share the search's.
    ``stop_after``: train the schedule only up to that step and raise :class:`~edgedistill.distill.pause.Paused`
    with a snapshot; a later call with the same config resumes there (a stage already complete is returned as is).

    Raises:
        ConfigError, InputError: bad config or data, before any training.
        Paused: ``stop_after`` came before the end of the schedule.
    """

    from edgedistill.distill.distributed import current_world
    from edgedistill.errors import ConfigError
    from edgedistill.tasks import get_task

    cfg = as_config(config)
    if cfg.student.search is not None:
        raise ConfigError("student.search: a searched student is found by `edgedistill search` (or `run`, which "
                          "searches first); `distill` needs student.from_teacher, hf_config or factory")
    stage = importlib.import_module(get_task(cfg.teacher.task).distill_stage)
    world = current_world()  # under torchrun: every rank runs this, rank 0 writes
    run = RunDir(out, force)
    section = {k: dump(getattr(cfg, k)) for k in ("teacher", "student", "data", "distill")}
    inputs = {"teacher": cfg.teacher.path} if cfg.teacher.path is not None else {}

    def make(partial: Path) -> list[Artifact]:
        from edgedistill.distill.stage import untrained_artifact

        student = stage.run(cfg, partial, cache_dir=cache_dir or run.root / "cache", refresh_cache=force,
                            stop_after=stop_after)
        return [student, untrained_artifact(cfg, partial)]

    made = run.made("distill", section, inputs, ["student", "untrained", stage.HELDOUT], make,
                    summary=None, world=world)
    return made[0]


SEARCH_SECTIONS = ("teacher", "student", "data", "distill", "export", "fuse", "quantize", "evaluate", "bench")


def search(config: PipelineConfig | str | Path, out: Path, force: bool = False) -> dict[str, Any]:
    """Search for the fastest student keeping ``student.search.min_quality`` of the teacher (into ``out/search/``:
    every candidate's record, the Pareto front and plot, ``chosen.json``); returns ``chosen.json``'s content.

    Raises:
        ConfigError: the config has no search, or its space does not fit the teacher.
        InputError: the budget cannot train one candidate, or no candidate meets the floor (nothing is published;
            the records stay in ``out/search.partial/`` and a re-run resumes from them).
    """
    from edgedistill.artifacts import read_json
    from edgedistill.errors import ConfigError
    from edgedistill.search import stage as search_stage

    cfg = as_config(config)
    if cfg.student.search is None:
        raise ConfigError("student.search: this config has no search section; give student.search (see README, "
                          "'Student search') or use `edgedistill run`")
    run = RunDir(out, force)
    section = {k: dump(getattr(cfg, k)) for k in SEARCH_SECTIONS}
    made = run.made("search", section, {"teacher": cfg.teacher.path} if cfg.teacher.path else {},
                    list(search_stage.OUTPUTS),
                    lambda partial: [search_stage.run(cfg, partial, run.root / "cache")], summary=("candidate",))
    chosen: dict[str, Any] = read_json(made[0].path)
    return chosen


def searched(cfg: PipelineConfig, out: Path, force: bool) -> PipelineConfig:
    """Run the search, then hand the pipeline the chosen student: the config with it in place of the search, and
    the chosen finalist's distill, export and fuse stages taken into ``out`` (made under that same config, so the
    pipeline skips them)."""
    from edgedistill.config import FromTeacher
    from edgedistill.search.configs import candidate_config

    chosen = search(cfg, out, force)
    resolved = candidate_config(cfg, FromTeacher.model_validate(chosen["student"]["from_teacher"]),
                                [chosen["precision"]])
    RunDir(out).adopt(out / "search" / chosen["run_dir"], ("distill", "export", "fuse"))
    return resolved


def ship(cfg: PipelineConfig, student: Artifact, out: Path, steps: list[QuantizeStep], force: bool = False,
         data: QuantizeData | None = None) -> tuple[Artifact, Artifact, list[Artifact]]:
    """Export ``student`` as the config says, fuse it where the config fuses (an encoder's fuse section; a decoder's
    after our dynamo export, onnxruntime-genai's builder writing its graph fused) and quantize the deployed graph
    by ``steps``; returns (export, deployed: the fused graph or the export itself, the quantized artifacts)."""
    from edgedistill.config.base import GENERATIVE_TASK

    assert cfg.export is not None  # the config allows null for text-generation only, and then nothing ships
    generative = cfg.teacher.task == GENERATIVE_TASK
    form = cfg.fuse.form if cfg.fuse is not None and not generative else None
    onnx_model = export(student, out, cfg.export, force=force, fuse_form=form)
    fused = cfg.fuse is not None and (not generative or cfg.export.exporter == "dynamo")
    deployed = fuse(onnx_model, out, cfg.fuse, force=force) if fused else onnx_model
    return onnx_model, deployed, quantize(deployed, out, steps, force=force, data=data)


def export(model: Path | Artifact, out: Path, config: ExportConfig | None = None, task: str | None = None,
           force: bool = False, bisect: bool = False, fuse_form: str | None = None) -> Artifact:
    """Export a Hugging Face model (or a run's student) to ONNX with its task head, verified against torch.

    ``bisect``: also compare every module's output with torch and name the first that differs.
    ``fuse_form``: the attention form fused afterwards, which decides ``opset: auto``.

    Raises:
        VerificationError: ONNX Runtime and torch disagree beyond tolerance (nothing is written).
    """
    from edgedistill.export.opset import opset_for_form
    from edgedistill.tasks import get_task

    source = pick(model, ("distill",), task)
    onnx_export = importlib.import_module(get_task(source.task).export_stage)
    cfg = config or ExportConfig()
    if cfg.opset == "auto":
        cfg = cfg.model_copy(update={"opset": opset_for_form(fuse_form)})
    made = RunDir(out, force).made(
        "export", dump(cfg), {"model": source.path}, [ONNX_NAME],
        lambda partial: [onnx_export.run(cfg, source, partial, bisect=bisect)], summary=("verification",))
    return made[0]


def fuse(model: Path | Artifact, out: Path, config: FuseConfig | None = None, task: str | None = None,
         force: bool = False) -> Artifact:
    """Fuse attention in an ONNX model (or a run's export); the result is verified against the unfused graph.
    Warns when some attention blocks stay unfused (the report marks it too).

    Raises:
        VerificationError: fused and unfused outputs differ beyond tolerance (nothing is published).
        InputError: not an ONNX model, or the form needs a newer opset.
    """
    from edgedistill.config.base import GENERATIVE_TASK
    from edgedistill.fuse import decoder_stage
    from edgedistill.fuse import stage as fusion

    source = pick(model, ("export",), task)
    cfg = config or FuseConfig()
    stage = decoder_stage if source.task == GENERATIVE_TASK else fusion
    made = RunDir(out, force).made(
        "fuse", dump(cfg), {"model": source.path}, [ONNX_NAME],
        lambda partial: [stage.run(cfg, source, partial)], summary=("attention", "verification"))
    fusion.warn_unfused(made[0])
    return made[0]


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
    inputs = {"model": source.path} | ({"plugin": opts.plugin_library} if opts.plugin_library else {})
    made = RunDir(out, force).made(
        "build", {"target": target, "options": dump(opts)}, inputs, list(build_stage.OUTPUTS),
        lambda partial: [build_stage.run(opts, target, source, partial, build_fn or build_serialized)])
    return made[0]


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
    made = RunDir(out, force).made(
        "package", {"target": target, "options": dump(opts)}, {"model": source.path}, list(package_stage.OUTPUTS),
        lambda partial: [package_stage.run(opts, target, source, partial)])
    return made[0]


def estimate(model: Path | Artifact, target: str, precision: str | None = None, dims: dict[str, int] | None = None,
             out: Path | None = None, force: bool = False) -> Estimate:
    """The roofline estimate of an ONNX model on ``target`` — an ESTIMATE, never a measurement; recorded in
    ``out/estimate/estimate.json`` (a manifest row) when ``out`` is given.

    Raises:
        ConfigError: unknown target or precision. InputError: not an ONNX model, an unsized or unknown dimension.
    """
    from edgedistill.estimate import estimate as run_estimate
    from edgedistill.estimate import stage as estimate_stage

    source = onnx_source(model, "estimate")
    found = run_estimate(source.path, target, precision, dims)
    if out is not None:
        section = {"target": target, "precision": precision, "dims": dims or {}}
        RunDir(out, force).made("estimate", section, {"model": source.path}, [estimate_stage.ESTIMATE],
                                lambda partial: [estimate_stage.run(found, source, target, partial)],
                                summary=("estimate",))
    return found


def quantize(model: Path | Artifact, out: Path, steps: list[QuantizeStep] | None = None, task: str | None = None,
             force: bool = False, data: QuantizeData | None = None) -> list[Artifact]:
    """Quantize an ONNX model (or a run's export/fuse output) with each step; returns the quantized artifacts.

    ``data`` carries calibration samples (static-int8, trt-int8) and evaluation samples / STS pairs (sensitivity,
    accuracy budget); dynamic-int8 and fp16 need none.

    Raises:
        InputError: a step needs data that was not given, too few calibration samples, an already-quantized model.
    """
    from edgedistill.quantize import stage as quantize_stage

    source = pick(model, ("fuse", "export"), task)
    steps = [DynamicInt8()] if steps is None else steps
    if not steps:
        return []

    def make(partial: Path) -> list[Artifact]:
        return [quantize_stage.run(step, source, partial / step.label, data) for step in steps]

    section = {"steps": dump(steps), "data": data_fingerprint(data)}
    outputs = [f"{s.label}/{ONNX_NAME}" for s in steps]
    return RunDir(out, force).made("quantize", section, {"model": source.path}, outputs, make)


def evaluate(models: list[Artifact], out: Path, teacher: Artifact | None, heldout: list[str],
             sets: dict[str, Any], config: EvaluateConfig | None = None, force: bool = False,
             reference: np.ndarray | None = None) -> dict[str, Any]:
    """Measure every model the same way, with its Task's metrics: fidelity to ``teacher`` on ``heldout`` samples,
    the task metric on each scored set (``sets``: name → ``data.eval``-style config, e.g. STS pairs); writes
    ``evaluate/metrics.json``.

    ``reference``: the teacher's outputs for ``heldout`` when there is no ``teacher`` artifact to run (a recorded
    or HTTP teacher: its stored labels).

    Returns:
        ``{"quality": {artifact: metrics}}``.
    """
    from edgedistill.evaluate import stage as evaluate_stage

    cfg = config or EvaluateConfig()
    inputs = {a.name: a.path for a in models} | {f"data_{k}": s.path for k, s in sets.items()}
    section = {"evaluate": dump(cfg), "heldout": len(heldout), "teacher": teacher.name if teacher else None,
               "sets": {k: dump(s) for k, s in sets.items()},
               "reference": None if reference is None else array_hash(reference)}
    made = RunDir(out, force).made(
        "evaluate", section, inputs, [evaluate_stage.METRICS],
        lambda partial: [evaluate_stage.run(cfg, models, partial, teacher, heldout, sets, reference)])
    return made[0].meta


def run_generative(cfg: PipelineConfig, out: Path, force: bool) -> dict[str, Any]:
    """The stages of a text-generation run: distill → export (decoder with a KV cache) → fuse (our dynamo export;
    onnxruntime-genai's builder writes its graph fused) → quantize (weight-only by default) → evaluate every artifact
    with the Task's metrics → report; says which stages the Task skips."""
    from edgedistill.progress import console
    from edgedistill.tasks import get_task

    task = get_task(cfg.teacher.task)
    skipped = [s for s in ("export", "fuse", "quantize", "bench") if s not in task.stages]
    if skipped:
        console.print(f"task {task.name}: runs {' → '.join(task.stages)}; skips {', '.join(skipped)} "
                      "(not available for this task yet)")
    student = distill(cfg, out, force)
    if "export" in task.stages and cfg.export is not None:
        steps = task.quantize_steps(cfg)
        data = pipeline_lm_quantize_data(cfg, steps, student.path.parent) if any(
            needs_data(s) for s in steps) else None
        ship(cfg, student, out, steps, force, data)
    evaluate_generative(cfg, out, force)
    return report(out, force)


def evaluate_generative(config: PipelineConfig | str | Path, out: Path, force: bool = False) -> dict[str, Any]:
    """Measure a text-generation run's teacher (white-box), untrained and distilled student, and the student's
    exports (ONNX, quantized) with the Task's metric set (perplexity, agreement and KL to the teacher, greedy
    exact-match and ROUGE-L, multiple choice); writes ``evaluate/metrics.json``.

    Raises:
        InputError: the distill stage has not run in ``out``.
    """
    from edgedistill.lm import evaluate_stage

    cfg = as_config(config)
    found = run_artifacts(out)
    ours = [found["student-untrained"], found["student"]]
    exported = [a for a in found.values() if a.kind == "onnx" and a.task == cfg.teacher.task]
    teacher = [Artifact("teacher", "hf", cfg.teacher.path, cfg.teacher.task)] if cfg.teacher.white_box and \
        cfg.teacher.path is not None else []
    models = teacher + ours + exported
    distill_dir = ours[1].path.parent
    section = {"teacher": dump(cfg.teacher), "data": dump(cfg.data), "generation": dump(cfg.teacher.generation),
               "max_length": cfg.distill.max_length}
    inputs = {a.name: a.path for a in models} | {"heldout": distill_dir / evaluate_stage.HELDOUT_TARGETS}
    made = RunDir(out, force).made("evaluate", section, inputs, [evaluate_stage.METRICS],
                                   lambda partial: [evaluate_stage.run(cfg, models, distill_dir, partial)])
    return made[0].meta


def bench(models: Sequence[Path | Artifact], out: Path, config: BenchConfig | None = None, task: str | None = None,
          force: bool = False) -> dict[str, Any]:
    """Benchmark models side by side in one run (same inputs, same threads); writes ``bench/results.json``.

    Returns:
        ``{"p50_ms": {"artifact@shape": median}}``.
    Raises:
        InputError: a model is missing or not a model, or a shape lies outside an ONNX model's fixed dims.
    """
    from edgedistill.bench import stage as bench_stage

    cfg = config or BenchConfig()
    artifacts = [pick(m, ("distill",), task) for m in models]
    for artifact in artifacts:  # before the stage starts: a bad shape is an input error, not a failed stage
        bench_stage.check_bench_shapes(artifact, cfg)
    made = RunDir(out, force).made("bench", dump(cfg), {a.name: a.path for a in artifacts}, [bench_stage.RESULTS],
                                   lambda partial: [bench_stage.run(cfg, artifacts, partial)])
    return made[0].meta


def report(run_dir: Path, force: bool = False) -> dict[str, Any]:
    """Write the ledger of ``run_dir`` (``report/report.md``, ``.json``, ``.png``, ``.html``) from its evaluate and
    bench results; returns the report (as in ``report.json``).

    Raises:
        InputError: neither evaluate nor bench has run there, or their results are unreadable.
    """
    from edgedistill.artifacts import read_json
    from edgedistill.report import stage as report_stage
    from edgedistill.report.ledger import load_inputs

    run_dir = Path(run_dir)
    load_inputs(run_dir)  # says which stage to run before a report stage starts
    made = RunDir(run_dir, force).made("report", {}, report_stage.report_inputs(run_dir), list(report_stage.FILES),
                                       lambda partial: [report_stage.run(run_dir, partial)])
    return read_json(made[0].path.with_name("report.json"))


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
    from edgedistill.tasks import get_task

    task = get_task(cfg.teacher.task)
    if cfg.student.search is not None:
        cfg = searched(cfg, out, force)
    if task.generative:
        return run_generative(cfg, out, force)
    student = distill(cfg, out, force)
    data = pipeline_quantize_data(cfg, out) if any(needs_data(s) for s in cfg.quantize) else None
    onnx_model, deployed, quantized = ship(cfg, student, out, cfg.quantize, force, data)
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
    return report(out, force)
