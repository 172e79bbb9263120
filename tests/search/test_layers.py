"""The layers a searched depth keeps: fidelity's best subsets, decided by the search metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support.configs import write_sts

from edgedistill.config import EvaluateConfig
from edgedistill.data.stsb import read_sts
from edgedistill.models.teachers.huggingface import HuggingFaceTeacher
from edgedistill.search.layers import RERANK, choose_subset


def test_the_metric_decides_between_the_most_faithful_subsets(tmp_path: Path, deep_teacher: Path,
                                                               tiny_texts: list[str]) -> None:
    teacher = HuggingFaceTeacher.load(deep_teacher, "sentence-embedding", 32, False)
    pairs = read_sts(write_sts(tmp_path / "sts.csv", tiny_texts, pairs=30))
    sets = {"eval": (pairs, None)}
    chosen, table = choose_subset(teacher.model, teacher.tokenizer, 2, tiny_texts[:16], sets, "sts_eval_spearman",
                                  EvaluateConfig(batch_size=16, max_length=32), 32)
    assert len(table) == 3  # every 2-of-3 subset, each with its fidelity
    by_fidelity = sorted(table, key=lambda k: table[k]["fidelity"], reverse=True)
    reranked = [k for k in table if "metric" in table[k]]
    assert sorted(reranked) == sorted(by_fidelity[:RERANK])
    assert ",".join(map(str, chosen)) == max(reranked, key=lambda k: table[k]["metric"])
    assert np.isfinite([table[k]["metric"] for k in reranked]).all()


def test_without_an_eval_set_fidelity_alone_decides(deep_teacher: Path, tiny_texts: list[str]) -> None:
    teacher = HuggingFaceTeacher.load(deep_teacher, "sentence-embedding", 32, False)
    chosen, table = choose_subset(teacher.model, teacher.tokenizer, 1, tiny_texts[:16], {}, "fidelity_cosine",
                                  EvaluateConfig(), 32)
    assert ",".join(map(str, chosen)) == max(table, key=lambda k: table[k]["fidelity"])
    assert all("metric" not in v for v in table.values())
