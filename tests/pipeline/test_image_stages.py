"""Image models through the CLI stages like text models: export a ViT folder, fuse, quantize (static INT8
calibrated on images), bench with image shapes; and the one-line errors the image path can hit."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import one_line_error
from support.tiny_models import make_tiny_vit, write_image_folder
from typer.testing import CliRunner

from edgedistill.cli import app
from edgedistill.models.onnx_file import onnx_io, onnx_metadata


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vit")
    make_tiny_vit(tmp / "vit")
    write_image_folder(tmp / "images", per_class=5)
    result = invoke("export", tmp / "vit", "--out", tmp / "run", "--task", "image-classification", "--max-batch", 8)
    assert result.exit_code == 0, result.output
    return tmp


def test_export_fuse_quantize_bench(vit_run):
    run = vit_run / "run"
    inputs, outputs = onnx_io(run / "export" / "model.onnx")
    assert inputs == [("pixel_values", "float32", ["batch", 3, 32, 32])] and outputs[0][0] == "logits"
    assert onnx_metadata(run / "export" / "model.onnx")["edgedistill.task"] == "image-classification"
    assert (run / "export" / "preprocessor_config.json").is_file()
    fused = invoke("fuse", run, "--out", run)
    assert fused.exit_code == 0 and "(2 of 2 attention blocks" in fused.output, fused.output
    quantized = invoke("quantize", run, "--out", run, "--mode", "static-int8", "--mode", "dynamic-int8",
                       "--calibration-size", 10, "--images", vit_run / "images")
    assert quantized.exit_code == 0, quantized.output
    static = run / "quantize" / "static-int8-default-minmax" / "model.onnx"
    bench = invoke("bench", run / "fuse" / "model.onnx", static, "--out", vit_run / "bench", "--shape", "2",
                   "--backend", "onnxruntime", "--iterations", 3, "--rounds", 1)
    assert bench.exit_code == 0, bench.output
    header = next(line for line in bench.output.splitlines() if line.startswith("artifact"))
    assert header.split()[1:] == ["MB", "2", "2"]  # the shape label is the batch, under p50 and speed-up


def test_image_shapes_and_options_are_checked(vit_run):
    run = vit_run / "run"
    one_line_error(invoke("bench", run / "export" / "model.onnx", "--out", vit_run / "b2", "--shape", "2x16",
                          "--backend", "onnxruntime"), "image models take a batch of images", "--shape 2")
    one_line_error(invoke("quantize", run, "--out", run, "--mode", "dynamic-int8", "--preset", "avx2"),
                   "--preset does not apply to mode dynamic-int8")
    one_line_error(invoke("export", vit_run / "vit", "--out", vit_run / "r2", "--task", "sentence-embedding"),
                   "a vit model takes images", "use task image-classification")


def test_static_int8_needs_its_images(vit_run, tmp_path: Path):
    one_line_error(invoke("quantize", vit_run / "run", "--out", tmp_path, "--mode", "static-int8"),
                   "static INT8 needs at least 8 calibration images", "--images")
