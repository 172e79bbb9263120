"""Which teacher layers a searched depth keeps: the subsets closest to the teacher untrained (cosine fidelity on
held-out texts, cheap), the best ``rerank`` of them then scored by the search metric itself on the eval set.

Fidelity alone can pick a subset that imitates the teacher's last layers well but ranks pairs worse: on
all-MiniLM-L6-v2, two layers (4, 5) have the highest fidelity (0.538 against 0.483 for (0, 5)), while (0, 5) scores
higher on STS-B dev untrained (80.2 against 79.8) and, trained, is the better student (benchmarks/distill).
"""

from __future__ import annotations

from typing import Any

from edgedistill.config import FromTeacher
from edgedistill.distill.depth import select_layers
from edgedistill.distill.layer_search import search_layers
from edgedistill.distill.teacher_cache import run_model

RERANK = 4  # fidelity's best subsets that the metric then decides between


def metric_of(model: Any, tokenizer: Any, sets: dict[str, Any], metric: str, batch_size: int,
              max_length: int) -> float | None:
    """The Task metric ``metric`` of a torch TaskModel on the scored ``sets`` (None: not one of theirs)."""
    def outputs(samples: list[str]) -> Any:
        return run_model(model, tokenizer, samples, batch_size, max_length)

    found: dict[str, Any] = {}
    for name, (data, labels) in sets.items():
        found |= model.spec.score(outputs, name, data, labels)
    value = found.get(metric)
    return None if value is None else float(value)


def choose_subset(teacher: Any, tokenizer: Any, count: int, heldout: list[str], sets: dict[str, Any], metric: str,
                  evaluate: Any, max_length: int, seed: int = 0) -> tuple[list[int], dict[str, dict[str, float]]]:
    """The layers for a depth of ``count``, and each scored subset's fidelity (and metric, for the reranked)."""
    _, fidelity = search_layers(teacher, tokenizer, FromTeacher(layers="search", num_layers=count), heldout,
                                max_length, seed)
    table = {k: {"fidelity": v} for k, v in fidelity.items()}
    top = sorted(fidelity, key=lambda k: fidelity[k], reverse=True)[:RERANK]
    for key in top if sets else []:
        value = metric_of(select_layers(teacher, [int(i) for i in key.split(",")]), tokenizer, sets, metric,
                          evaluate.batch_size, evaluate.max_length)
        if value is None:  # a fidelity metric: fidelity already ranked them
            break
        table[key]["metric"] = value
    ranked = [k for k in top if "metric" in table[k]]
    best = max(ranked, key=lambda k: table[k]["metric"]) if ranked else top[0]
    return [int(i) for i in best.split(",")], table
