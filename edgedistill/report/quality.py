"""The quality columns of a report, from the metrics its rows carry: the Task's fidelity to the teacher first
(``fidelity`` for embeddings; ``agreement`` and ``KL`` for classifiers), then its metric on each scored set
(``STS eval``, ``acc test``, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FIDELITY = {"fidelity_cosine": ("fidelity", ".4f"), "agreement": ("agreement", ".4f"),
            "top1_agreement": ("top-1 agree", ".3f"), "kl": ("KL", ".4f"), "perplexity": ("PPL", ".1f"),
            "exact_match": ("EM", ".3f"), "rouge_l": ("ROUGE-L", ".3f"), "mc_acc": ("MC acc", ".3f"),
            "mc_acc_norm": ("MC acc_n", ".3f")}
SET_METRICS = (("sts_", "_spearman", "STS", ".2f"), ("accuracy_", "", "acc", ".4f"))


@dataclass(frozen=True)
class Column:
    key: str  # the row's key
    label: str  # the column head
    spec: str  # the number format
    scored_set: str | None = None  # for a scored-set metric: the set's name


def set_metric(key: str) -> Column | None:
    """The column of a scored-set metric key (``sts_test_spearman``, ``accuracy_eval``), or None."""
    for prefix, suffix, label, spec in SET_METRICS:
        if key.startswith(prefix) and key.endswith(suffix) and len(key) > len(prefix) + len(suffix):
            name = key[len(prefix): len(key) - len(suffix)]
            return Column(key, f"{label} {name}", spec, name)
    return None


def quality_columns(rows: list[dict[str, Any]]) -> list[Column]:
    """The quality columns ``rows`` have values for (fidelity always, when any row is a model evaluated), in order."""
    keys = [k for row in rows for k in row]
    fidelity = [Column(k, *FIDELITY[k]) for k in FIDELITY if k in keys]
    sets: list[Column] = []
    for key in keys:
        column = set_metric(key)
        if column is not None and column not in sets:
            sets.append(column)
    return fidelity + sets


def headline(columns: list[Column]) -> Column | None:
    """The column a quality-vs-latency plot shows: the task metric on the test set, else on eval, else fidelity."""
    for name in ("test", "eval"):
        found = next((c for c in columns if c.scored_set == name), None)
        if found:
            return found
    return columns[0] if columns else None
