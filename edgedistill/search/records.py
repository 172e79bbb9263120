"""What a search knows, in one JSON file rewritten atomically after every step, so a killed search resumes.

``records.json``::

    {"teacher": {metric: value}, "floor": 0.97, "metric": "sts_eval_spearman", "started": epoch seconds,
     "spent_s": seconds of search work before this process (a resumed search keeps its clock),
     "phases_s": {phase: seconds spent in it, across resumes} (prepare, layers, untrained, timing, proxies, final),
     "architectures": {name: {"spec": from_teacher, "layers": [...], "untrained": {...},
                              "rungs": {steps: {"quality", "metric", "wall_s"}}, "status", "reason"}},
     "candidates": {name: {"architecture", "precision", "latency": {shape: ms}, "latency_ms", "latency_kind",
                           "untrained": {"quality", metric}, "final": {"quality", metric}, "status", "reason"}}}
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgedistill.artifacts import atomic_write_json, read_json

RECORDS = "records.json"


class Records:
    """The search's records in ``folder``; every write is atomic."""

    def __init__(self, folder: Path, started_under: dict[str, Any]):
        self.path = folder / RECORDS
        found = read_json(self.path) if self.path.is_file() else None
        if found is None or found.get("started_under") != started_under:  # the partial key guards this too
            found = {"started_under": started_under, "spent_s": 0.0, "architectures": {}, "candidates": {}}
        self.data: dict[str, Any] = found
        self.clock = time.perf_counter()
        self.spent_before = float(found["spent_s"])

    def spent_s(self) -> float:
        """Seconds of search work so far, across resumes."""
        return self.spent_before + time.perf_counter() - self.clock

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Add the seconds spent inside the block to ``phases_s[name]`` (saved, kept across resumes)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            phases = self.data.setdefault("phases_s", {})
            phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - start, 2)
            self.save()

    def architecture(self, name: str) -> dict[str, Any]:
        return self.data["architectures"].setdefault(name, {"rungs": {}, "status": "scored"})

    def candidate(self, name: str) -> dict[str, Any]:
        return self.data["candidates"].setdefault(name, {"status": "scored"})

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def drop(self, architecture: str, reason: str) -> None:
        """Mark an architecture, and its candidates still in the running, as dropped for ``reason``."""
        self.architecture(architecture).update(status="dropped", reason=reason)
        for record in self.data["candidates"].values():
            if record["architecture"] == architecture and record["status"] == "scored":
                record.update(status="dropped", reason=reason)
        self.save()

    def save(self) -> None:
        self.data["spent_s"] = round(self.spent_s(), 3)
        atomic_write_json(self.path, self.data)
