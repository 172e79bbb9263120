"""The package stage: an ONNX artifact in, a device bundle out (``out/bundle/`` and ``out/bundle.tar.gz``), to
build and benchmark the engine on the device itself."""

from __future__ import annotations

from pathlib import Path

from edgedistill.artifacts import Artifact
from edgedistill.bundle.package import package
from edgedistill.errors import InputError
from edgedistill.trt.options import BuildOptions

FOLDER = "bundle"
OUTPUTS = (FOLDER, f"{FOLDER}.tar.gz")


def run(options: BuildOptions, target: str, source: Artifact, out: Path) -> Artifact:
    """Package ``source`` for ``target`` into ``out/bundle`` and ``out/bundle.tar.gz``.

    Raises:
        InputError: not an ONNX artifact, or see :func:`edgedistill.bundle.package.package`.
        ConfigError: see :func:`edgedistill.bundle.package.package`.
    """
    if source.kind != "onnx":
        raise InputError(f"package takes an ONNX model; '{source.name}' is a {source.kind} artifact — export it "
                         "first")
    bundle = package(source.path, target, out / FOLDER, options)
    meta = {"target": target, "tarball": bundle.tarball.name if bundle.tarball else None,
            "uses_plugin": (bundle.folder / "plugins").is_dir()}
    return Artifact(f"{source.name}-bundle-{target}", "bundle", bundle.folder, source.task, meta)
