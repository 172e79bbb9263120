"""The student search end to end on the tiny BERT: chosen, carried through the pipeline, resumed, and refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.search_configs import write_search_config

from edgedistill import api
from edgedistill.artifacts import read_json, read_manifest
from edgedistill.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def searched_run(tmp_path_factory: pytest.TempPathFactory, deep_teacher: Path, tiny_texts: list[str]) -> Path:
    """One whole run with a search whose floor only the full depth meets untrained (promising 4: some dropped)."""
    tmp = tmp_path_factory.mktemp("search")
    config = write_search_config(tmp, deep_teacher, tiny_texts, min_quality=0.6, promising=4)
    api.run(config, tmp / "run")
    return tmp / "run"


def test_the_chosen_is_the_fastest_shipped_candidate_meeting_the_floor(searched_run: Path) -> None:
    records = read_json(searched_run / "search" / "records.json")
    chosen = read_json(searched_run / "search" / "chosen.json")
    cands = records["candidates"]
    assert len(cands) == 12 and chosen["quality"] >= 0.6
    assert cands[chosen["candidate"]]["status"] == "chosen"
    for name, cand in cands.items():  # every faster one says why it lost
        assert cand["latency_kind"].startswith("measured") and set(cand["latency"]) == {"1x16", "2x16"}
        if cand["latency_ms"] < chosen["latency_ms"]:
            assert cand.get("reason") or cand["final"]["quality"] < 0.6, name
        assert cand["status"] != "dropped" or cand["reason"]
    dropped = [a for a in records["architectures"].values() if a["status"] == "dropped"]
    assert any("dominated untrained" in a["reason"] or "beyond the promising" in a["reason"] for a in dropped)
    front = read_json(searched_run / "search" / "front.json")
    assert chosen["candidate"] in {p["name"] for p in front["front"]}
    assert (searched_run / "search" / "search.png").stat().st_size > 10_000
    phases = records["phases_s"]  # where the search's time went, phase by phase
    assert set(phases) == {"prepare", "layers", "untrained", "timing", "proxies", "final"}
    assert all(s > 0 for s in phases.values()) and sum(phases.values()) <= records["spent_s"]


def test_the_pipeline_carries_the_chosen_finalist_on(searched_run: Path) -> None:
    chosen = read_json(searched_run / "search" / "chosen.json")
    finalist = read_manifest(searched_run / "search" / chosen["run_dir"])["stages"]
    stages = read_manifest(searched_run)["stages"]
    for stage in ("distill", "export", "fuse"):  # taken from the finalist, not redone
        assert stages[stage]["key"] == finalist[stage]["key"]
    assert stages["distill"]["config"]["student"]["from_teacher"]["layers"] == \
        chosen["student"]["from_teacher"]["layers"]
    assert {"evaluate", "bench", "report"} <= set(stages)
    report = (searched_run / "report" / "report.md").read_text()
    assert f"Student search: **{chosen['candidate']}** chosen of 12 candidates (1 fully distilled" in report


def test_untrained_candidates_are_verified_loosely_and_the_finalist_at_the_configs_tolerance(
        searched_run: Path) -> None:
    """An untrained cut is ill-conditioned: its export and fusion are checked at search.untrained_atol (1e-3),
    the shipped finalist at export.atol / fuse.atol, the config's own."""
    chosen = read_json(searched_run / "search" / "chosen.json")
    untrained = read_manifest(searched_run / "search" / chosen["architecture"] / "untrained")["stages"]
    finalist = read_manifest(searched_run / "search" / chosen["run_dir"])["stages"]
    assert untrained["export"]["config"]["atol"] == untrained["fuse"]["config"]["atol"] == 1e-3
    assert finalist["export"]["config"]["atol"] == 1e-4  # the defaults
    assert finalist["fuse"]["config"]["atol"] == 1e-5


def test_a_killed_search_resumes_without_training_again(tmp_path: Path, deep_teacher: Path, tiny_texts: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from edgedistill.search import stage

    config = write_search_config(tmp_path, deep_teacher, tiny_texts, min_quality=0.5,
                                 space={"layers": [1, 2], "precision": ["fp32"]})  # none meets it untrained
    calls: list[str] = []
    distill = api.distill

    def counted(cfg: Any, out: Path, force: bool = False, cache_dir: Path | None = None,
                stop_after: int | None = None) -> Any:
        calls.append(f"{out.parent.name}@{stop_after}" if stop_after else f"{out.parent.name}@end")
        return distill(cfg, out, force, cache_dir, stop_after)

    def killed(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "distill", counted)
    monkeypatch.setattr(stage, "finish", killed)
    with pytest.raises(KeyboardInterrupt):
        api.search(config, tmp_path / "run")
    before = read_json(tmp_path / "run" / "search.partial" / "records.json")
    proxies = [c for c in calls if not c.endswith("@end")]
    assert proxies and not [c for c in calls if c.endswith("@end")]
    monkeypatch.undo()
    monkeypatch.setattr(api, "distill", counted)
    calls.clear()
    chosen = api.search(config, tmp_path / "run")
    assert not [c for c in calls if not c.endswith("@end")], f"proxies {proxies} were trained again"
    assert calls == [f"{chosen['architecture']}@end"]  # the finalist's distillation, resumed from its last rung
    after = read_json(tmp_path / "run" / "search" / "records.json")
    for name, arch in before["architectures"].items():
        assert after["architectures"][name]["rungs"] == arch["rungs"]
    assert after["spent_s"] >= before["spent_s"] and chosen["candidate"]
    assert after["phases_s"]["proxies"] >= before["phases_s"]["proxies"]  # a resume adds to its phases' clocks


def test_a_floor_no_candidate_meets_names_the_best_and_publishes_nothing(tmp_path: Path, deep_teacher: Path,
                                                                         tiny_texts: list[str]) -> None:
    config = write_search_config(tmp_path, deep_teacher, tiny_texts, min_quality=1.2,
                                 space={"layers": [1], "precision": ["fp32"]})
    with pytest.raises(InputError, match=r"no candidate keeps 1.2 of the teacher's fidelity_cosine: the best found, "
                                         r"L1-H32-A2-F64-fp32, keeps 0\.\d+ \(final\)"):
        api.run(config, tmp_path / "run")
    assert not (tmp_path / "run" / "search").exists() and not (tmp_path / "run" / "distill").exists()
    assert (tmp_path / "run" / "search.partial" / "records.json").is_file()  # for the user to read


def test_a_budget_too_small_for_one_candidate(tmp_path: Path, deep_teacher: Path, tiny_texts: list[str]) -> None:
    config = write_search_config(tmp_path, deep_teacher, tiny_texts, budget_minutes=0.001,
                                 space={"layers": [1], "precision": ["fp32"]})
    with pytest.raises(InputError, match="budget_minutes 0.001 is too small to train even one candidate"):
        api.search(config, tmp_path / "run")
    assert not (tmp_path / "run" / "search").exists()


def test_a_space_with_more_layers_than_the_teacher(tmp_path: Path, deep_teacher: Path, tiny_texts: list[str]) -> None:
    config = write_search_config(tmp_path, deep_teacher, tiny_texts, space={"layers": [1, 4]})
    with pytest.raises(ConfigError, match="4 layers asked for, but the teacher has 3"):
        api.search(config, tmp_path / "run")
    assert not (tmp_path / "run" / "cache").exists()  # refused before the teacher labelled anything


def test_an_unknown_target_is_refused_when_the_config_loads(tmp_path: Path, deep_teacher: Path,
                                                            tiny_texts: list[str]) -> None:
    from edgedistill.config import load_config

    config = write_search_config(tmp_path, deep_teacher, tiny_texts, target="jetson-orin-nan-8gb")
    with pytest.raises(ConfigError, match=r"student.search.target: .*did you mean 'jetson-orin-nano-8gb'"):
        load_config(config)


def test_an_encoder_search_refuses_a_decoder_precision(tmp_path: Path, deep_teacher: Path,
                                                       tiny_texts: list[str]) -> None:
    from edgedistill.config import load_config

    config = write_search_config(tmp_path, deep_teacher, tiny_texts, space={"layers": [1], "precision": ["int4"]})
    with pytest.raises(ConfigError, match="int4 is not shipped for task sentence-embedding; choose from fp32, int8"):
        load_config(config)


def test_distill_alone_refuses_a_searched_student(search_config: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="found by `edgedistill search`"):
        api.distill(search_config, tmp_path / "run")


def test_the_cli_searches_and_says_bad_input_in_one_line(tmp_path: Path, deep_teacher: Path,
                                                         tiny_texts: list[str]) -> None:
    from support.cli import one_line_error
    from typer.testing import CliRunner

    from edgedistill.cli import app

    runner = CliRunner()
    config = write_search_config(tmp_path, deep_teacher, tiny_texts, space={"layers": [1, 4]})
    one_line_error(runner.invoke(app, ["search", str(config), "--out", str(tmp_path / "run")]),
                   "4 layers asked for, but the teacher has 3")
    config = write_search_config(tmp_path, deep_teacher, tiny_texts, min_quality=0.1,
                                 space={"layers": [1], "precision": ["fp32"]})
    done = runner.invoke(app, ["search", str(config), "--out", str(tmp_path / "run")])
    assert done.exit_code == 0, done.output
    assert "chosen: L1-H32-A2-F64-fp32: quality" in done.output and "why: the fastest shipped" in done.output


def test_the_finalist_is_its_rungs_continued_and_equals_distilling_it_alone(searched_run: Path,
                                                                            tmp_path: Path) -> None:
    """Proxy rungs pause the candidate's own distillation; the finalist's run resumes from its last rung, and ends
    with the very weights a fresh run of the chosen config gives. Non-finalists' paused runs are pruned."""
    import torch
    from safetensors.torch import load_file

    from edgedistill.config import FromTeacher, load_config
    from edgedistill.search.configs import candidate_config

    records = read_json(searched_run / "search" / "records.json")
    chosen = read_json(searched_run / "search" / "chosen.json")
    arch = records["architectures"][chosen["architecture"]]
    rungs = sorted(int(k) for k in arch["rungs"])
    assert arch["resumed_from_step"] == (rungs[-1] if rungs else 0)
    for name, other in records["architectures"].items():
        assert (searched_run / "search" / name / "full").exists() == (other["status"] == "finalist"), name
        steps = sorted(int(k) for k in other["rungs"])
        assert [other["rungs"][str(s)]["trained"] for s in steps] == [b - a for a, b in zip([0, *steps], steps)]
    cfg = load_config(next(searched_run.parent.glob("*.yaml")))  # the config the fixture searched with
    alone = api.distill(candidate_config(cfg, FromTeacher.model_validate(chosen["student"]["from_teacher"]),
                                         [chosen["precision"]]), tmp_path / "alone")
    ours = searched_run / "search" / chosen["run_dir"] / "distill" / "student"
    theirs = load_file(str(next(alone.path.glob("*.safetensors"))))
    for key, value in load_file(str(next(ours.glob("*.safetensors")))).items():
        assert torch.equal(value, theirs[key]), key


def test_a_remote_target_gets_the_roofline_estimate_labelled_as_one(searched_run: Path) -> None:
    from edgedistill.config import Shape
    from edgedistill.search import latency

    chosen = read_json(searched_run / "search" / "chosen.json")
    graph = next((searched_run / "search" / chosen["run_dir"] / "fuse").rglob("*.onnx"))
    shapes = [Shape(batch=1, seq=16), Shape(batch=8, seq=16)]
    found = latency.estimated([("fp32", graph, "fp32"), ("int8", graph, "int8")], "jetson-orin-nano-8gb", shapes)
    assert set(found) == {"fp32", "int8"} and all(set(t) == {"1x16", "8x16"} for t in found.values())
    assert all(0 < found[p]["1x16"] < found[p]["8x16"] for p in found)  # eight times the work costs more
    assert found["int8"]["8x16"] < found["fp32"]["8x16"]  # the target's INT8 peak is above its FP32 one
    kind = latency.latency_kind("jetson-orin-nano-8gb")
    assert kind.startswith("estimate") and "jetson-orin-nano-8gb" in kind and "measured" not in kind
