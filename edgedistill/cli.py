"""The ``edgedistill`` command: a thin table over :mod:`edgedistill.api`.

Heavy libraries (torch, transformers, onnxruntime) are imported inside the commands, so ``--help`` is
instant. Errors the user can act on print as one line and exit 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from edgedistill.config import (
    MODES,
    PRESETS,
    BenchConfig,
    DynamicAxes,
    ExportConfig,
    FuseConfig,
    PipelineConfig,
    StaticInt8,
    WeightOnly,
)

app = typer.Typer(
    help="Distil a teacher into a small student, export to ONNX, quantize, benchmark and report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
STATE = {"debug": False}
T = TypeVar("T")

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run directory to write into.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Redo stages even if inputs and config are unchanged: "
                                          "partial work is discarded and the teacher asked again for every row.")]
TaskOpt = Annotated[
    str | None, typer.Option(help="Model task for plain paths: sentence-embedding, sequence-classification or "
                                  "image-classification (default: what the ONNX file records, else from the folder).")
]


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    STATE["debug"] = debug


# Failures of the machine rather than of edgedistill: what to do about each.
STORAGE_HINTS = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some of your disk quota",
                 errno.EROFS: "the filesystem is read-only: choose another --out",
                 errno.EACCES: "check its permissions, or choose another --out",
                 errno.EPERM: "check its permissions, or choose another --out"}


def error_line(err: BaseException) -> str:
    """The one line shown for an error the user can act on."""
    if isinstance(err, KeyboardInterrupt):
        return "error: KeyboardInterrupt: interrupted; completed stages are kept, re-run to resume"
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return (f"error: OSError: {where}{err.strerror}; {STORAGE_HINTS[err.errno or 0]}, then re-run "
                "(finished stages are kept; nothing half-written was published)")
    return f"error: {type(err).__name__}: {err}"


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn our errors, a full or read-only disk, and Ctrl-C into one line on stderr and exit 1,
    unless --debug."""
    from edgedistill.errors import EdgeDistillError

    try:
        return fn()
    except (EdgeDistillError, KeyboardInterrupt, OSError) as err:
        if STATE["debug"] or (isinstance(err, OSError) and err.errno not in STORAGE_HINTS):
            raise
        typer.echo(error_line(err), err=True)
        raise typer.Exit(1) from None


def show_report(report: dict[str, Any]) -> None:
    from edgedistill.report.render import print_table

    print_table(report)


@app.command()
def run(config: Annotated[Path, typer.Argument(help="Pipeline YAML.")], out: OutOpt, force: ForceOpt = False) -> None:
    """Run the whole pipeline: distill → export → fuse → quantize → evaluate → bench → report."""
    from edgedistill import api

    show_report(guarded(lambda: api.run(config, out, force)))


@app.command()
def search(config: Annotated[Path, typer.Argument(help="Pipeline YAML with student.search.")], out: OutOpt,
           force: ForceOpt = False) -> None:
    """Find the fastest student keeping student.search.min_quality of the teacher (records, Pareto front and plot in
    OUT/search/); `run` does the same first and then carries the chosen student through the pipeline."""
    from edgedistill import api

    chosen = guarded(lambda: api.search(config, out, force))
    typer.echo(f"chosen: {chosen['candidate']}: quality {chosen['quality']:.4f} of the teacher's {chosen['metric']} "
               f"(floor {chosen['floor']:g}), {chosen['latency_ms']:.3g} ms ({chosen['latency_kind']})")
    typer.echo(f"why: {chosen['why']}")
    typer.echo(f"records, front and plot: {Path(out) / 'search'}")


@app.command()
def distill(
    config: Annotated[Path, typer.Argument(help="Pipeline YAML.")], out: OutOpt, force: ForceOpt = False
) -> None:
    """Distil the teacher into the student (uses the teacher, student, data and distill sections)."""
    from edgedistill import api

    student = guarded(lambda: api.distill(config, out, force))
    typer.echo(f"student: {student.path}")


def default(model: Any, key: str) -> str:
    """A config field's default, for an option's help (the config models are the only place defaults live)."""
    field = model.model_fields[key]
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, list):
        value = ", ".join(str(getattr(v, "label", v)) for v in value)
    return f" (default: {value})"


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave (None: not given, so the config's default applies)."""
    return {k: v for k, v in values.items() if v is not None}


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Hugging Face model folder, or a run directory.")],
    out: OutOpt,
    opset: Annotated[str | None, typer.Option(help="ONNX opset, or auto." + default(ExportConfig, "opset"))]
    = None,
    exporter: Annotated[str | None, typer.Option(help="dynamo or torchscript." + default(ExportConfig, "exporter"))]
    = None,
    max_batch: Annotated[int | None, typer.Option(help="Largest batch the export must accept (default: "
                                                       f"{DynamicAxes().batch.max}).")] = None,
    max_seq: Annotated[int | None, typer.Option(help="Longest sequence the export must accept (default: "
                                                     f"{DynamicAxes().sequence.max}).")] = None,
    bisect: Annotated[
        bool, typer.Option(help="Compare every module's output with torch; name the first that differs.")
    ] = False,
    task: TaskOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export to ONNX (task head included), verified against torch on several shapes."""
    from edgedistill import api

    def work() -> Any:
        axes = DynamicAxes()
        dynamic = {"batch": [axes.batch.min, max_batch or axes.batch.max],
                   "sequence": [axes.sequence.min, max_seq or axes.sequence.max]}
        number = opset if opset in (None, "auto") else opset_number(opset)
        cfg = validated(ExportConfig, **given(opset=number, exporter=exporter), dynamic=dynamic)
        return api.export(model, out, cfg, task, force, bisect=bisect)

    typer.echo(f"onnx: {guarded(work).path}")


@app.command()
def fuse(
    model: Annotated[Path, typer.Argument(help="ONNX file, or a run directory.")],
    out: OutOpt,
    form: Annotated[str | None, typer.Option(help="ort (MultiHeadAttention), onnx (opset-23 Attention), trt-plugin."
                                                  + default(FuseConfig, "form"))] = None,
    require_all: Annotated[bool | None, typer.Option("--require-all/--no-require-all",
                                                     help="Fail if any attention block stays unfused.")] = None,
    pack_qkv: Annotated[bool | None, typer.Option("--pack-qkv/--no-pack-qkv", help="ort form: one packed QKV GEMM "
                                                  "per self-attention block." + default(FuseConfig, "pack_qkv"))]
    = None,
    unpadded_fast_path: Annotated[bool | None, typer.Option(
        "--unpadded-fast-path/--no-unpadded-fast-path",
        help="ort form: unpadded batches (batch x seq^2 >= --unpadded-min-scores) take ONNX Runtime's CPU flash "
        "attention." + default(FuseConfig, "unpadded_fast_path"))] = None,
    unpadded_min_scores: Annotated[int | None, typer.Option(
        help="ort form: batch x seq^2 from which the fast path runs." + default(FuseConfig, "unpadded_min_scores"))]
    = None,
    ort_fusions: Annotated[bool | None, typer.Option("--ort-fusions/--no-ort-fusions",
                                                     help="Also save ONNX Runtime's own fusions into the file.")]
    = None,
    atol: Annotated[float | None, typer.Option(help="Max abs difference fused vs unfused."
                                                    + default(FuseConfig, "atol"))] = None,
    task: TaskOpt = None,
    force: ForceOpt = False,
) -> None:
    """Fuse attention blocks into one op, verified against the unfused graph; reports what was fused or skipped."""
    from edgedistill import api

    def work() -> Any:
        cfg = validated(FuseConfig, **given(form=form, require_all=require_all, pack_qkv=pack_qkv,
                                            ort_fusions=ort_fusions, unpadded_fast_path=unpadded_fast_path,
                                            unpadded_min_scores=unpadded_min_scores, atol=atol))
        return api.fuse(model, out, cfg, task, force)

    made = guarded(work)
    attention = made.meta.get("attention") or {}
    packed = f", {made.meta['qkv_packed']} with packed QKV" if made.meta.get("qkv_packed") else ""
    fast = (f", {made.meta['unpadded_fast_path']} with the unpadded fast path"
            if made.meta.get("unpadded_fast_path") else "")
    typer.echo(f"fused: {made.path} ({attention.get('fused', '?')} of {attention.get('found', '?')} attention blocks"
               f"{packed}{fast})")


@app.command()
def quantize(
    model: Annotated[Path, typer.Argument(help="ONNX file, or a run directory.")],
    out: OutOpt,
    mode: Annotated[list[str] | None, typer.Option(help=", ".join(MODES) + " (repeatable)."
                                                        + default(PipelineConfig, "quantize"))] = None,
    per_channel: Annotated[bool | None, typer.Option("--per-channel/--per-tensor",
                                                     help="Per-channel weight scales (INT8 modes).")] = None,
    preset: Annotated[str | None, typer.Option(help="static-int8 / qad-int8 preset: " + ", ".join(PRESETS) + ".")]
    = None,
    calibration: Annotated[str | None, typer.Option(help="minmax, entropy or percentile (calibrated modes)."
                                                         + default(StaticInt8, "calibration"))] = None,
    calibration_size: Annotated[int | None, typer.Option(help="Calibration texts to use."
                                                              + default(StaticInt8, "calibration_size"))] = None,
    texts: Annotated[Path | None, typer.Option(help="Text file (one per line): calibration texts first, then "
                                                    "evaluation texts for --budget-min / --sensitivity.")] = None,
    images: Annotated[Path | None, typer.Option(help="Image models: a folder of images (or of class folders), "
                                                     "calibration images first, then evaluation ones.")] = None,
    budget_min: Annotated[
        float | None, typer.Option(help="Keep sensitive layers float until fidelity >= this (weight-only: raise "
                                        "them to INT8 until this share of the float top-1 agreement is kept; "
                                        "MODEL is then the text-generation run).")
    ] = None,
    sensitivity: Annotated[bool | None, typer.Option("--sensitivity/--no-sensitivity",
                                                     help="Write a per-layer sensitivity table and plot.")] = None,
    bits: Annotated[int | None, typer.Option(help="weight-only: 4 or 8." + default(WeightOnly, "bits"))] = None,
    algorithm: Annotated[str | None, typer.Option(help="weight-only: rtn, hqq or gptq."
                                                       + default(WeightOnly, "algorithm"))] = None,
    block_size: Annotated[int | None, typer.Option(help="weight-only: weights per scale."
                                                        + default(WeightOnly, "block_size"))] = None,
    accuracy_level: Annotated[int | None, typer.Option(help="weight-only: MatMulNBits compute type 0-4."
                                                            + default(WeightOnly, "accuracy_level"))] = None,
    lm_head: Annotated[str | None, typer.Option(help="weight-only: quantize or float."
                                                     + default(WeightOnly, "lm_head"))] = None,
    task: TaskOpt = None,
    force: ForceOpt = False,
) -> None:
    """Quantize an ONNX model with ONNX Runtime: INT8 dynamic/static (QDQ), TensorRT-ready QDQ, FP16, and
    weight-only INT4/INT8 (MatMulNBits) for decoders."""
    from edgedistill import api

    def work() -> Any:
        metric = "top1_kept" if mode == ["weight-only"] else "fidelity_cosine"
        budget = {"metric": metric, "min": budget_min} if budget_min is not None else None
        options = given(per_channel=per_channel, preset=preset, calibration=calibration,
                        calibration_size=calibration_size, budget=budget, sensitivity=sensitivity, bits=bits,
                        algorithm=algorithm, block_size=block_size, accuracy_level=accuracy_level, lm_head=lm_head)
        steps_default = PipelineConfig.model_fields["quantize"].get_default(call_default_factory=True)
        modes = mode or [s.mode for s in steps_default]
        steps = steps_for(modes, options)
        size = max((getattr(s, "calibration_size", 0) for s in steps), default=0)
        data = samples_data(sample_list(texts, images), size) if texts or images else None
        if metric == "top1_kept" and budget is not None:
            data = lm_budget_data(model, data)
        return api.quantize(model, out, steps, task, force, data)

    for artifact in guarded(work):
        typer.echo(f"{artifact.name}: {artifact.path}")


def lm_budget_data(model: Path, data: Any) -> Any:
    """``data`` (QuantizeData or None) with the teacher's answers the run ``model`` kept, for a weight-only budget.

    Raises:
        InputError: ``model`` is not a text-generation run directory.
    """
    from dataclasses import replace

    from edgedistill.errors import InputError
    from edgedistill.pipeline_data import budget_targets
    from edgedistill.quantize.data import QuantizeData

    if not model.is_dir():
        raise InputError(f"{model}: a weight-only --budget-min scores on the teacher's answers; give the "
                         "text-generation run directory, not the ONNX file")
    return replace(data or QuantizeData([]), targets=budget_targets(model / "distill"))


def steps_for(modes: list[str], options: dict[str, Any]) -> list[Any]:
    """The steps of ``modes`` with the options given, validated like YAML. With several modes an option goes to
    each mode that takes it; an option no given mode takes is an error rather than ignored.

    Raises:
        ConfigError: an unknown mode, an option no given mode takes, or a bad value.
    """
    from pydantic import ValidationError

    from edgedistill.config import format_validation_error, quantize_step
    from edgedistill.config.base import known
    from edgedistill.errors import ConfigError

    try:
        classes = [(m, MODES[known(m, tuple(MODES), "quantization mode")]) for m in modes]
    except ValueError as err:
        raise ConfigError(f"--mode: {err}") from None
    if extra := [k for k in options if not any(k in cls.model_fields for _, cls in classes)]:
        flag = "--" + extra[0].replace("_", "-")
        takes = ", ".join(sorted({f for _, cls in classes for f in cls.model_fields if f != "mode"}))
        raise ConfigError(f"{flag} does not apply to mode {', '.join(modes)}; it takes: {takes}")
    steps = []
    for mode, cls in classes:
        try:
            steps.append(quantize_step(mode=mode, **{k: v for k, v in options.items() if k in cls.model_fields}))
        except ValidationError as err:
            raise ConfigError(format_validation_error(err, f"--mode {mode}")) from None
    return steps


def sample_list(texts: Path | None, images: Path | None) -> list[str]:
    """The samples given on the command line: the lines of a text file, or the images of a folder."""
    from edgedistill.errors import ConfigError

    if texts and images:
        raise ConfigError("give --texts (text models) or --images (image models), not both")
    if images is not None:
        from edgedistill.data.labelled import image_paths

        return image_paths(images)
    from edgedistill.data.corpus import read_text_lines

    assert texts is not None
    return read_text_lines(texts)


def samples_data(samples: list[str], calibration_size: int) -> Any:
    """QuantizeData from samples: the first ``calibration_size`` calibrate, the rest evaluate."""
    from edgedistill.quantize.data import QuantizeData

    return QuantizeData(calibration_texts=samples[:calibration_size], eval_texts=samples[calibration_size:])


@app.command()
def bench(
    models: Annotated[list[Path], typer.Argument(help="ONNX files and/or Hugging Face model folders.")],
    out: OutOpt,
    shape: Annotated[list[str] | None, typer.Option(help="BATCHxSEQ, e.g. 1x128, or BATCH for image models "
                                                         "(repeatable)." + default(BenchConfig, "shapes"))] = None,
    backend: Annotated[list[str] | None, typer.Option(help="torch, onnxruntime and/or tensorrt."
                                                           + default(BenchConfig, "backends"))] = None,
    iterations: Annotated[int | None, typer.Option(help="Timed iterations per shape."
                                                        + default(BenchConfig, "iterations"))] = None,
    duration: Annotated[float | None, typer.Option(help="Keep timing each shape at least this many seconds.")] = None,
    warmup: Annotated[int | None, typer.Option(help="Untimed warm-up iterations per shape."
                                                    + default(BenchConfig, "warmup"))] = None,
    warmup_s: Annotated[float | None, typer.Option(help="Keep warming up at least this many seconds.")] = None,
    rounds: Annotated[int | None, typer.Option(help="Interleaved A B A B … rounds per shape."
                                                    + default(BenchConfig, "rounds"))] = None,
    sequential: Annotated[bool, typer.Option(help="Time models one after another instead of interleaved.")] = False,
    threads: Annotated[int | None, typer.Option(help="Intra-op threads for every backend (default: all cores).")]
    = None,
    inter_op_threads: Annotated[int | None, typer.Option(help="Inter-op threads for every backend."
                                                              + default(BenchConfig, "inter_op_threads"))] = None,
    device: Annotated[str | None, typer.Option(help="torch device: cpu or cuda[:N]." + default(BenchConfig, "device"))]
    = None,
    provider: Annotated[list[str] | None, typer.Option(help="ONNX Runtime provider: cpu, cuda, tensorrt."
                                                            + default(BenchConfig, "providers"))] = None,
    power: Annotated[str | None, typer.Option(help="Jetson power sampling: auto, on, off."
                                                   + default(BenchConfig, "power"))] = None,
    task: TaskOpt = None,
    force: ForceOpt = False,
) -> None:
    """Benchmark models side by side (interleaved): p50/p90/p99, throughput, cold start, memory, size, power."""
    from edgedistill import api

    def work() -> Any:
        cfg = validated(BenchConfig, **given(
            backends=backend, shapes=[parse_shape(s) for s in shape] if shape else None, iterations=iterations,
            min_duration_s=duration, warmup=warmup, warmup_s=warmup_s, rounds=rounds,
            compare="sequential" if sequential else None, threads=threads, inter_op_threads=inter_op_threads,
            device=device, providers=provider, power=power))
        api.bench(models, out, cfg, task, force)
        return api.report(out)

    show_report(guarded(work))


@app.command()
def generate(
    model: Annotated[Path, typer.Argument(help="Exported decoder (model.onnx or its folder), model folder, GGUF "
                                               "file, or run directory.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The prompt.")],
    chat: Annotated[bool, typer.Option(help="Wrap the prompt as a user turn with the chat template.")] = False,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Most tokens to generate.")] = 128,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 is greedy.")] = 0.0,
    top_k: Annotated[int, typer.Option(min=0, help="Sample among the k likeliest (0: all).")] = 0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling mass (1: off).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (default: the runtime's).")] = None,
) -> None:
    """Generate text with a language model, streaming tokens as they come (ONNX Runtime or torch)."""
    from edgedistill.lm.runtime import encode_prompt, open_decoder, stream_text
    from edgedistill.lm.sampling import Sampling

    def work() -> None:
        decoder, tokenizer = open_decoder(model, threads)
        ids = encode_prompt(tokenizer, prompt, chat)
        for piece in stream_text(decoder, tokenizer, ids, max_new_tokens, Sampling(temperature, top_k, top_p, seed)):
            typer.echo(piece, nl=False)
        typer.echo("")

    guarded(work)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Reference results.json or run directory.")],
    b: Annotated[Path, typer.Argument(help="Results to compare with it.")],
    metric: Annotated[str, typer.Option(help="p50_ms, p99_ms, throughput_per_s, ...")] = "p50_ms",
) -> None:
    """Ratio table of two bench results (B over A), listing where their environments differ."""
    from edgedistill.bench.compare import compare as compare_results
    from edgedistill.bench.compare import format_compare

    typer.echo(format_compare(guarded(lambda: compare_results(a, b, metric))))


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="Run directory.")], force: ForceOpt = False) -> None:
    """Write the run's ledger (report/report.md, .json, .png, .html) and print the table."""
    from edgedistill import api

    show_report(guarded(lambda: api.report(run_dir, force)))


@app.command()
def examples() -> None:
    """The example configs shipped with edgedistill: `edgedistill run pkg:edgedistill/examples/NAME.yaml`."""
    from edgedistill.config.examples import shipped_examples

    for example in shipped_examples():
        typer.echo(f"{example.name}: {example.summary}\n  {example.spec}\n  {example.path}")


plugins_app = typer.Typer(help="The native fused-attention kernel library and TensorRT plugin (C++/CUDA).")
app.add_typer(plugins_app, name="plugins")


@plugins_app.command("build")
def plugins_build(
    build_dir: Annotated[Path | None, typer.Option(help="Build folder (default: under the user cache).")] = None,
    cuda: Annotated[bool | None, typer.Option("--cuda/--no-cuda", help="Build the CUDA kernels (default: when "
                                               "nvcc is found).")] = None,
    cuda_archs: Annotated[str | None, typer.Option(help="CMAKE_CUDA_ARCHITECTURES, e.g. '87' or '86;89' "
                                                   "(default: by the nvcc version).")] = None,
    tensorrt_root: Annotated[Path | None, typer.Option(help="TensorRT prefix, for the TensorRT plugin.")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="Parallel compile jobs.")] = None,
) -> None:
    """Build the libraries with CMake from the package's own sources, where the loader finds them."""
    from edgedistill.plugins.build import build_plugins

    typer.echo(f"built: {guarded(lambda: build_plugins(build_dir, cuda, cuda_archs, tensorrt_root, jobs))}")


@plugins_app.command("where")
def plugins_where() -> None:
    """Where each library was found, or where it was looked for; exits 1 when the kernel library is not built."""
    from edgedistill.errors import MissingDependencyError
    from edgedistill.plugins.loader import KERNEL_LIBRARY, PLUGIN_LIBRARY, find_library

    missing = []
    for stem in (KERNEL_LIBRARY, PLUGIN_LIBRARY):
        try:
            typer.echo(f"{stem}: {find_library(stem)}")
        except MissingDependencyError as err:
            typer.echo(f"{stem}: {err}")
            missing.append(stem)
    if KERNEL_LIBRARY in missing:
        raise typer.Exit(1)


targets_app = typer.Typer(help="Deployment targets (one YAML per device): their peaks and defaults.")
app.add_typer(targets_app, name="targets")

TargetOpt = Annotated[str, typer.Option("--target", help="Target name (see `edgedistill targets`).")]
PrecisionOpt = Annotated[
    str | None, typer.Option(help="fp32, tf32, fp16, bf16, int8, fp8, fp4 (default: the target's).")
]
DimOpt = Annotated[list[str], typer.Option("--dim", help="NAME=MIN:OPT:MAX profile range (repeatable).")]
OnnxArg = Annotated[Path, typer.Argument(help="ONNX file.")]
DlaOpt = Annotated[int | None, typer.Option(help="DLA core (Jetson), with GPU fallback.")]
WorkspaceOpt = Annotated[int | None, typer.Option(help="Builder workspace limit (MiB).")]
OptLevelOpt = Annotated[int | None, typer.Option(help="Builder optimisation level 0-5.")]
StronglyTypedOpt = Annotated[bool, typer.Option(help="Strongly typed network.")]


@targets_app.callback(invoke_without_command=True)
def targets_list(ctx: typer.Context) -> None:
    """List the deployment targets."""
    if ctx.invoked_subcommand is None:
        from edgedistill.targets.show import targets_table

        typer.echo(guarded(targets_table))


@targets_app.command("show")
def targets_show(name: Annotated[str, typer.Argument(help="Target name, e.g. jetson-agx-orin-64gb.")]) -> None:
    """Every field of a target with its source, and the defaults it picks."""
    from edgedistill.targets.show import describe_target

    typer.echo(guarded(lambda: describe_target(name)))


def build_options(precision: str | None, dim: list[str], plugin_lib: Path | None = None, dla_core: int | None = None,
                  workspace_mib: int | None = None, timing_cache: Path | None = None, opt_level: int | None = None,
                  strongly_typed: bool = False) -> Any:
    """BuildOptions validated like YAML config (same messages)."""
    from edgedistill.trt import BuildOptions
    from edgedistill.trt.options import parse_dim_ranges

    return validated(BuildOptions, precision=precision, dims=parse_dim_ranges(dim), plugin_library=plugin_lib,
                     dla_core=dla_core, workspace_mib=workspace_mib, timing_cache=timing_cache,
                     opt_level=opt_level, strongly_typed=strongly_typed)


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="ONNX file, or a run directory (its fused, else exported model).")],
    target: TargetOpt, out: OutOpt, precision: PrecisionOpt = None,
    dim: DimOpt = [],  # noqa: B006
    plugin_lib: Annotated[Path | None, typer.Option("--plugin-lib", help="Fused-attention plugin library.")] = None,
    dla_core: DlaOpt = None,
    workspace_mib: WorkspaceOpt = None,
    timing_cache: Annotated[Path | None, typer.Option(help="Timing cache file, reused and updated.")] = None,
    opt_level: OptLevelOpt = None,
    strongly_typed: StronglyTypedOpt = False,
    force: ForceOpt = False,
) -> None:
    """Build a TensorRT engine (+ sidecar JSON) for TARGET on this machine's GPU, into OUT/build/."""
    from edgedistill import api

    built = guarded(lambda: api.build(model, target, out, build_options(
        precision, dim, plugin_lib, dla_core, workspace_mib, timing_cache, opt_level, strongly_typed), force))
    typer.echo(f"engine: {built.path}\nsidecar: {built.path.with_name(built.meta['sidecar'])}")


@app.command()
def package(
    model: Annotated[Path, typer.Argument(help="ONNX file, or a run directory (its fused, else exported model).")],
    target: TargetOpt, out: OutOpt, precision: PrecisionOpt = None,
    dim: DimOpt = [],  # noqa: B006
    dla_core: DlaOpt = None,
    workspace_mib: WorkspaceOpt = None,
    opt_level: OptLevelOpt = None,
    strongly_typed: StronglyTypedOpt = False,
    force: ForceOpt = False,
) -> None:
    """Write a device bundle (OUT/package/bundle/ + bundle.tar.gz) that builds and benchmarks the engine on the
    device."""
    from edgedistill import api

    bundle = guarded(lambda: api.package(model, target, out, build_options(
        precision, dim, None, dla_core, workspace_mib, None, opt_level, strongly_typed), force))
    typer.echo(f"bundle: {bundle.path}\ntarball: {bundle.path.with_name(bundle.meta['tarball'])}")


@app.command()
def unpack(
    bundle: Annotated[Path, typer.Argument(help="Bundle archive (.tar.gz from `edgedistill package`, or a tar).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to unpack into.")] = Path("."),
) -> None:
    """Unpack a device bundle safely (no path escapes, no links) and verify every file against its manifest."""
    from edgedistill.bundle import unpack as unpack_bundle

    folder = guarded(lambda: unpack_bundle(bundle, out))
    typer.echo(f"bundle: {folder}\nnext: cd {folder} && ./build_engine.sh && ./bench.sh")


@app.command()
def estimate(
    model: Annotated[Path, typer.Argument(help="ONNX file, or a run directory (its fused, else exported model).")],
    target: TargetOpt, precision: PrecisionOpt = None,
    dim: Annotated[list[str], typer.Option("--dim", help="NAME=SIZE, e.g. sequence=128.")] = [],  # noqa: B006
    top: Annotated[int, typer.Option(help="Nodes to list.")] = 10,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to record it in (estimate/).")]
    = None,
) -> None:
    """Roofline lower-bound latency on TARGET — an ESTIMATE, never a measurement."""
    from edgedistill import api
    from edgedistill.estimate import format_estimate
    from edgedistill.trt.options import parse_dim_sizes

    est = guarded(lambda: api.estimate(model, target, precision, parse_dim_sizes(dim), out))
    typer.echo(format_estimate(est, top))


def opset_number(text: str) -> int:
    from edgedistill.config.export import OPSET_MAX, OPSET_MIN
    from edgedistill.errors import ConfigError

    if not text.isdigit():
        raise ConfigError(f"--opset {text!r}: expected a number ({OPSET_MIN}-{OPSET_MAX}) or auto")
    return int(text)


def parse_shape(text: str) -> dict[str, int]:
    from edgedistill.errors import ConfigError

    try:
        sizes = [int(x) for x in text.lower().split("x")]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2):
        raise ConfigError(f"--shape {text!r}: expected BATCHxSEQ (text models, e.g. 1x128) or BATCH (image models)")
    return dict(zip(("batch", "seq"), sizes))


def validated(model: Any, **values: Any) -> Any:
    """Validate command-line options through the same config model as YAML (same messages)."""
    from pydantic import ValidationError

    from edgedistill.config import format_validation_error
    from edgedistill.errors import ConfigError

    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, "options")) from None


if __name__ == "__main__":
    sys.exit(app())
