"""The JSON written next to every engine, and the check that refuses to load an engine on the wrong machine.

TensorRT engines are specific to the TensorRT version and the GPU that built them; loading one elsewhere
fails deep inside deserialisation with a message that says little. The sidecar records what the engine
needs, and :func:`check_sidecar` compares it with the running machine first, saying what was expected and
what was found.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from pydantic import ValidationError

from edgedistill.artifacts import atomic_write_json, read_json, sha256_path
from edgedistill.config import StrictModel, format_validation_error
from edgedistill.errors import InputError
from edgedistill.targets.defaults import parse_version
from edgedistill.trt.plan import BuildPlan

SIDECAR_SUFFIX = ".json"


class EngineMismatchError(InputError):
    """An engine was built for another GPU, TensorRT or plugin library than the one loading it."""


class RuntimeInfo(StrictModel):
    """The machine about to load an engine."""

    tensorrt: str
    gpu_name: str
    compute_capability: str
    plugin_sha256: str | None = None


class EngineSidecar(StrictModel):
    format: int = 1
    engine_sha256: str
    onnx_sha256: str
    tensorrt: str
    gpu_name: str
    compute_capability: str
    target: str
    precision: str
    flags: list[str]
    strongly_typed: bool
    profiles: list[dict[str, list[int] | str]]
    workspace_mib: int
    dla_core: int | None
    plugin_library: str | None
    plugin_sha256: str | None
    trtexec: list[str]


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + SIDECAR_SUFFIX)


def make_sidecar(plan: BuildPlan, runtime: RuntimeInfo, engine_sha256: str, onnx: Path,
                 trtexec: list[str]) -> EngineSidecar:
    return EngineSidecar(
        engine_sha256=engine_sha256, onnx_sha256=sha256_path(onnx), tensorrt=runtime.tensorrt,
        gpu_name=runtime.gpu_name, compute_capability=runtime.compute_capability, target=plan.target,
        precision=plan.precision, flags=list(plan.flags), strongly_typed=plan.strongly_typed,
        profiles=[{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(p).items()} for p in plan.profiles],
        workspace_mib=plan.workspace_mib, dla_core=plan.dla_core, plugin_library=plan.plugin_library,
        plugin_sha256=runtime.plugin_sha256, trtexec=trtexec,
    )


def write_sidecar(engine: Path, sidecar: EngineSidecar) -> None:
    atomic_write_json(sidecar_path(engine), sidecar.model_dump())


def read_sidecar(engine: Path) -> EngineSidecar:
    """The sidecar of ``engine``.

    Raises:
        InputError: it is missing or invalid (the engine cannot be checked, so it is not loaded).
    """
    path = sidecar_path(engine)
    if not path.is_file():
        raise InputError(f"{path} is missing, so {engine.name} cannot be checked against this machine; "
                         "rebuild it with `edgedistill build`")
    try:
        return EngineSidecar.model_validate(read_json(path))
    except (ValidationError, ValueError) as err:
        detail = format_validation_error(err, str(path)) if isinstance(err, ValidationError) else f"{path}: {err}"
        raise InputError(f"{detail}; rebuild the engine") from None


def same_release(built: str, running: str) -> bool:
    """Engines load only in the TensorRT release that built them (major.minor.patch)."""
    return parse_version(built)[:3] == parse_version(running)[:3]


def mismatches(sidecar: EngineSidecar, runtime: RuntimeInfo) -> list[str]:
    """What differs between the machine that built the engine and this one (empty: it should load)."""
    found = []
    if not same_release(sidecar.tensorrt, runtime.tensorrt):
        found.append(f"built with TensorRT {sidecar.tensorrt}, this machine has TensorRT {runtime.tensorrt}")
    if sidecar.compute_capability != runtime.compute_capability:
        found.append(f"built for {sidecar.gpu_name} (compute capability {sidecar.compute_capability}), "
                     f"this GPU is {runtime.gpu_name} ({runtime.compute_capability})")
    if sidecar.plugin_sha256 and runtime.plugin_sha256 != sidecar.plugin_sha256:
        got = runtime.plugin_sha256[:12] if runtime.plugin_sha256 else "no plugin library"
        found.append(f"built with plugin library sha256 {sidecar.plugin_sha256[:12]}, loading {got}")
    return found


def check_sidecar(engine: Path, sidecar: EngineSidecar, runtime: RuntimeInfo) -> None:
    """Raise EngineMismatchError if ``engine`` cannot run here, naming what was expected and what was found.

    Also refuses an engine file whose hash differs from the one recorded (replaced or truncated).
    """
    problems = mismatches(sidecar, runtime)
    if sha256_path(engine) != sidecar.engine_sha256:
        problems.insert(0, "the engine file differs from the one the sidecar describes (replaced or truncated)")
    if problems:
        raise EngineMismatchError(f"{engine.name}: " + "; ".join(problems) +
                                  f"; rebuild on this machine (edgedistill build ... --target {sidecar.target}) "
                                  "or run it where it was built")
