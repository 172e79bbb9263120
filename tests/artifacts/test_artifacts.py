"""Atomic writes, stage folders and the manifest's skip check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgedistill.artifacts import Manifest, atomic_write_text, sha256_path, stage_dir


def test_atomic_write_leaves_no_temp_and_readable_mode(tmp_path):
    target = tmp_path / "a" / "f.txt"
    atomic_write_text(target, "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]
    assert target.stat().st_mode & 0o044  # group/other can read, unlike mkstemp's 0600


def test_failed_stage_keeps_previous_result(tmp_path):
    final = tmp_path / "export"
    with stage_dir(final) as partial:
        (partial / "model.onnx").write_text("good")
    with pytest.raises(RuntimeError), stage_dir(final) as partial:
        (partial / "model.onnx").write_text("half")
        raise RuntimeError("verification failed")
    assert (final / "model.onnx").read_text() == "good"
    assert (tmp_path / "export.partial" / "model.onnx").exists()  # kept for resuming, never mistaken for final


def test_failed_stage_with_nothing_written_leaves_no_partial(tmp_path):
    with pytest.raises(ValueError), stage_dir(tmp_path / "distill"):
        raise ValueError("bad corpus")
    assert os.listdir(tmp_path) == []


def test_manifest_is_current_only_with_same_key_and_intact_outputs(tmp_path):
    out = tmp_path / "bench" / "results.json"
    out.parent.mkdir()
    out.write_text("{}")
    manifest = Manifest(tmp_path)
    manifest.record("bench", key="k1", config={}, inputs={}, outputs={"results.json": out}, wall_s=1.0, metrics={})
    again = Manifest(tmp_path)
    assert again.is_current("bench", "k1", {"results.json": out})
    assert not again.is_current("bench", "k2", {"results.json": out})
    out.write_text('{"edited": true}')
    assert not again.is_current("bench", "k1", {"results.json": out})


def test_folder_hash_covers_names_and_contents(tmp_path: Path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("1")
    first = sha256_path(tmp_path / "d")
    (tmp_path / "d" / "a").rename(tmp_path / "d" / "b")
    assert sha256_path(tmp_path / "d") != first
