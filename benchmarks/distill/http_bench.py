"""Labelling throughput of the HTTP teacher: concurrency 8 vs 1 against a local server with 20 ms latency.

Run: .venv/bin/python benchmarks/distill/http_bench.py  (target: ≥ 6× with concurrency 8)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "tests"))  # tests/support: the scripted teacher server

from support.http_server import ServerState, teacher_server  # noqa: E402

from edgedistill.config import HttpTeacherConfig  # noqa: E402
from edgedistill.distill.label_store import LabelStore  # noqa: E402
from edgedistill.models.teachers.http_teacher import HttpTeacher  # noqa: E402

TEXTS = [f"sentence number {i} about a dog in the park" for i in range(1280)]
BATCH = 16  # texts per request: 80 requests


def throughput(url: str, concurrency: int) -> float:
    cfg = HttpTeacherConfig(url=url + "/v1/embeddings", model="m", dim=3, batch_size=BATCH, concurrency=concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        store = LabelStore(Path(tmp), f"c{concurrency}", len(TEXTS), BATCH)
        start = time.perf_counter()
        store.label_all(HttpTeacher(cfg), TEXTS)
        return len(TEXTS) / (time.perf_counter() - start)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with teacher_server(ServerState(latency_s=0.020)) as url:
        one, eight = throughput(url, 1), throughput(url, 8)
    print(f"requests: {len(TEXTS) // BATCH} x {BATCH} texts, server latency 20 ms, stored through the label store")
    print(f"concurrency 1: {one:8.0f} texts/s")
    print(f"concurrency 8: {eight:8.0f} texts/s")
    print(f"speed-up: {eight / one:.2f}x (target >= 6x)")


if __name__ == "__main__":
    main()
