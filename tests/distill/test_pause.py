"""A distillation paused part-way (``stop_after``) and resumed: the student search's proxy rungs. Paused at two
steps and then run to the end, it gives bit for bit the student of a run that never paused; its snapshot is the
student at the step it paused at, and the stage is not published until the schedule's end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support.configs import tiny_config

from edgedistill import api
from edgedistill.artifacts import read_manifest
from edgedistill.config import load_config
from edgedistill.distill.pause import SNAPSHOT, Paused

sys.path.insert(0, str(Path(__file__).parents[1] / "lm"))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(next(folder.glob("*.safetensors"))))


def paused_then_finished(cfg: object, out: Path, stops: list[int]) -> tuple[list[Paused], object]:
    pauses = []
    for stop in stops:
        with pytest.raises(Paused) as caught:
            api.distill(cfg, out, stop_after=stop)  # type: ignore[arg-type]
        pauses.append(caught.value)
        assert (caught.value.student.path / "config.json").is_file()  # until the stage runs again
        assert not (out / "distill").exists(), "a paused stage must not look complete"
        assert (out / "distill.partial" / "checkpoint.pt").is_file()
    return pauses, api.distill(cfg, out)  # type: ignore[arg-type]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def test_an_encoder_paused_twice_ends_where_an_unpaused_run_does(tmp_path: Path, tiny_bert: Path,
                                                                tiny_texts: list[str]) -> None:
    cfg = load_config(tiny_config(tmp_path, tiny_bert, tiny_texts))
    cfg = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"steps": 6, "checkpoint_every": 4})})
    pauses, student = paused_then_finished(cfg, tmp_path / "paused", [1, 3])
    assert [(p.step, p.steps) for p in pauses] == [(1, 6), (3, 6)]
    assert pauses[-1].student.path == tmp_path / "paused" / "distill.partial" / SNAPSHOT
    alone = api.distill(cfg, tmp_path / "alone")
    assert_same_weights(student.path, alone.path)  # type: ignore[attr-defined]
    assert not (tmp_path / "paused" / "distill" / SNAPSHOT).exists()  # removed once the stage completed
    first = [read_manifest(tmp_path / r)["stages"]["distill"]["metrics"]["loss_first"] for r in ("paused", "alone")]
    assert first[0] == first[1]  # the loss history carried across the pauses


def test_a_snapshot_is_the_student_at_the_step_it_paused_at(tmp_path: Path, tiny_bert: Path,
                                                            tiny_texts: list[str]) -> None:
    cfg = load_config(tiny_config(tmp_path, tiny_bert, tiny_texts))
    cfg = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"steps": 6, "checkpoint_every": 5})})
    with pytest.raises(Paused) as caught:
        api.distill(cfg, tmp_path / "a", stop_after=4)
    snapshot = weights(caught.value.student.path)
    checkpoint = torch.load(tmp_path / "a" / "distill.partial" / "checkpoint.pt", weights_only=False)
    assert checkpoint["step"] == 4  # checkpointed at the pause, not only every checkpoint_every steps
    saved = {k.removeprefix("backbone."): v for k, v in checkpoint["model"].items()}
    assert snapshot.keys() <= saved.keys() and all(torch.equal(snapshot[k], saved[k]) for k in snapshot)
    untrained = weights(tmp_path / "a" / "distill.partial" / "untrained")
    assert any(not torch.equal(snapshot[k], untrained[k]) for k in snapshot)  # it trained
    short = cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"steps": 4})})
    four = api.distill(short, tmp_path / "b")  # 4 steps of a 4-step schedule decay faster: another student
    assert any(not torch.equal(snapshot[k], v) for k, v in weights(four.path).items())


def test_a_language_model_paused_then_finished_equals_an_unpaused_run(tmp_path: Path) -> None:
    from support.tiny_lm import make_tiny_lm
    from test_lm_pipeline import write_config

    teacher = make_tiny_lm(tmp_path / "teacher", hidden=64)
    cfg = load_config(write_config(tmp_path, teacher, **{"distill.steps": 4}))
    pauses, student = paused_then_finished(cfg, tmp_path / "paused", [2])
    assert pauses[0].step == 2
    alone = api.distill(cfg, tmp_path / "alone")
    assert_same_weights(student.path, alone.path)  # type: ignore[attr-defined]
