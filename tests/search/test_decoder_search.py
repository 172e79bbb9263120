"""The student search for text-generation on a tiny random Llama: candidates cut by depth x width, shipped fp32 and
INT4, scored by agreement with the teacher's held-out answers and timed generating tokens; the chosen one carried
through the generative pipeline; a remote target's decode roofline; and the bad inputs of a decoder search."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.tiny_lm import CORPUS, make_tiny_lm

from edgedistill import api
from edgedistill.artifacts import read_json, read_manifest
from edgedistill.errors import ConfigError

WORDS = "dog cat man woman ball car house park guitar piano".split()


@pytest.fixture(scope="module")
def lm_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 layers, hidden 64 (head size 16, as GQA's kernels take), 4 heads in 2 KV groups; weights scaled up so
    that answers vary from token to token and every cut costs agreement."""
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "teacher", hidden=64, weight_scale=6.0)


def write_lm_search(root: Path, teacher: Path, **search: Any) -> Path:
    (root / "prompts.jsonl").write_text("".join(json.dumps({"prompt": f"tell me about the {w} please"}) + "\n"
                                                for w in WORDS))
    (root / "text.txt").write_text("\n".join(CORPUS * 2))
    spec: dict[str, Any] = {"min_quality": 0.2, "space": {"layers": [1, 3], "hidden_size": [64, 32],
                                                          "precision": ["fp32", "int4"]},
                            "budget_minutes": 30, "proxy_steps": 2, "eta": 2, "decode_tokens": 16,
                            "latency_iterations": 2}
    cfg = {
        "name": "tiny-lm-search",
        "teacher": {"source": "huggingface", "path": str(teacher), "task": "text-generation",
                    "generation": {"max_new_tokens": 6, "top_logprobs": 5, "batch_size": 4}},
        "student": {"search": spec | search},
        "data": {"train": [{"source": "text-lines", "path": "text.txt"}], "holdout": 4,
                 "prompts": {"source": "jsonl", "path": "prompts.jsonl"}, "heldout_prompts": 3},
        "distill": {"losses": [{"name": "sparse_kl"}], "steps": 8, "batch_size": 4, "lr": 1e-3},
        "export": {},
    }
    path = root / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory, lm_teacher: Path) -> Path:
    tmp = tmp_path_factory.mktemp("lm-search")
    api.run(write_lm_search(tmp, lm_teacher), tmp / "run")
    return tmp / "run"


def test_every_candidate_is_scored_shipped_and_timed_per_token(lm_run: Path) -> None:
    records = read_json(lm_run / "search" / "records.json")
    chosen = read_json(lm_run / "search" / "chosen.json")
    assert records["teacher"]["metric"] == 1.0 and chosen["metric"] == "top1_agreement"
    cands, archs = records["candidates"], records["architectures"]
    assert set(archs) == {"L1-H64-A4-F64", "L1-H32-A4-F32", "L3-H64-A4-F64", "L3-H32-A4-F32"}
    assert len(cands) == 8 and chosen["quality"] >= 0.2
    for name, arch in archs.items():
        # the exported fp32 decoder on ONNX Runtime agrees with the teacher exactly as the torch student does
        assert cands[f"{name}-fp32"]["untrained"]["metric"] == pytest.approx(arch["fidelity"], abs=1e-6)
    for cand in cands.values():
        assert set(cand["latency"]) == {"tg16"} and cand["latency_ms"] > 0
        assert cand["latency_kind"].startswith("measured (ONNX Runtime, this machine, tg16 interleaved")
    deeper = [cands[f"L3-H64-A4-F64-{p}"]["latency_ms"] / cands[f"L1-H64-A4-F64-{p}"]["latency_ms"]
              for p in ("fp32", "int4")]
    assert min(deeper) > 1.0  # three layers take longer per token than one
    for picked in records["layers"].values():  # the better of block influence and a uniform cut
        table = picked["subsets"]
        best = max(table, key=lambda k: table[k]["top1_agreement"])
        assert picked["layers"] == [int(i) for i in best.split(",")]
        assert {m for row in table.values() for m in row["methods"]} == {"block-influence", "uniform"}
    assert (lm_run / "search" / "search.png").stat().st_size > 10_000


def test_the_generative_pipeline_carries_the_chosen_decoder_on(lm_run: Path) -> None:
    chosen = read_json(lm_run / "search" / "chosen.json")
    finalist = read_manifest(lm_run / "search" / chosen["run_dir"])["stages"]
    stages = read_manifest(lm_run)["stages"]
    for stage in ("distill", "export", "fuse"):
        assert stages[stage]["key"] == finalist[stage]["key"]
    assert ("quantize" in stages) == (chosen["precision"] == "int4")
    metrics = read_json(lm_run / "evaluate" / "metrics.json")
    shipped = [n for n in metrics["order"] if n.startswith("student-int4") or n == "student-fused"]
    assert shipped and metrics["artifacts"]["student"]["top1_agreement"] > 0
    report = (lm_run / "report" / "report.md").read_text()
    assert f"Student search: **{chosen['candidate']}** chosen of 8 candidates" in report
    assert "ms/token (" in report and "tokens/s)" in report


def test_a_remote_target_is_estimated_by_the_decode_roofline(tmp_path: Path, lm_teacher: Path) -> None:
    config = write_lm_search(tmp_path, lm_teacher, min_quality=0.01, target="jetson-orin-nano-8gb",
                             space={"layers": [1], "precision": ["fp32", "int8", "int4"]})
    api.search(config, tmp_path / "run")
    cands = read_json(tmp_path / "run" / "search" / "records.json")["candidates"]
    ms = {c["precision"]: c["latency"]["tg16"] for c in cands.values()}
    assert all(c["latency_kind"].startswith("estimate (decode roofline") and
               c["latency_kind"].endswith("jetson-orin-nano-8gb") for c in cands.values())
    assert ms["int4"] < ms["int8"] < ms["fp32"]  # decode reads fewer bytes per weight


@pytest.mark.parametrize(("search", "message"), [
    ({"metric": "perplexity"}, "student.search.metric: 'perplexity' for text-generation"),
    ({"space": {"layers": [1], "precision": ["fp16"]}}, "fp16 is not shipped for task text-generation"),
    ({"shapes": [{"batch": 1, "seq": 16}]}, "a decoder is timed generating student.search.decode_tokens"),
])
def test_a_decoder_search_the_config_cannot_serve(tmp_path: Path, lm_teacher: Path, search: dict[str, Any],
                                                  message: str) -> None:
    from edgedistill.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config(write_lm_search(tmp_path, lm_teacher, **search))


def test_a_gptq_step_is_refused_for_untrained_candidates(tmp_path: Path, lm_teacher: Path) -> None:
    from edgedistill.config import load_config

    config = write_lm_search(tmp_path, lm_teacher)
    cfg = yaml.safe_load(config.read_text())
    cfg["quantize"] = [{"mode": "weight-only", "algorithm": "gptq"}]
    config.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"quantize\[0\]: a searched decoder ships with rtn or hqq"):
        load_config(config)


def test_heads_that_split_a_kv_group_and_too_many_layers_are_one_line(tmp_path: Path, lm_teacher: Path) -> None:
    from support.cli import one_line_error
    from typer.testing import CliRunner

    from edgedistill.cli import app

    runner = CliRunner()
    for space, message in (({"layers": [1], "heads": [3]}, "3 heads would split a KV group"),
                           ({"layers": [5]}, "5 layers asked for, but the teacher has 4")):
        config = write_lm_search(tmp_path, lm_teacher, space=space)
        out = tmp_path / "run"
        one_line_error(runner.invoke(app, ["search", str(config), "--out", str(out)]), message)
        assert not (out / "search").exists() and not (out / "cache").exists()  # refused before any answer
