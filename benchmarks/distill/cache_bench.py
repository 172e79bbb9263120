"""Epoch time with the teacher-output cache: the first epoch labels (teacher forward) and trains, the second
reads the memory-mapped store and only trains.

Teacher: all-MiniLM-L6-v2 when its package is installed (else a random 6-layer, hidden-384 BERT);
student: its layers 0 and 5 (--layers to change). Run: .venv/bin/python benchmarks/distill/cache_bench.py
Target: second epoch ≤ 0.55× the first.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options

from options import TEACHER  # noqa: E402

from edgedistill.config import DistillConfig, LossSpec  # noqa: E402
from edgedistill.data.corpus import python_docs_corpus  # noqa: E402
from edgedistill.distill.depth import select_layers  # noqa: E402
from edgedistill.distill.label_store import LabelStore  # noqa: E402
from edgedistill.distill.trainer import train  # noqa: E402
from edgedistill.models.task_model import load_task_model  # noqa: E402
from edgedistill.models.teachers.huggingface import HuggingFaceTeacher  # noqa: E402


def teacher_dir(tmp: Path) -> Path:
    try:
        from edgedistill.models.locate import resolve_pkg_path

        return resolve_pkg_path(TEACHER)
    except Exception:
        from support.tiny_models import make_tiny_bert  # tests/support: the suite's tiny models

        return make_tiny_bert(tmp / "bert", layers=6, hidden=384, heads=12)


def stored_rows(store: LabelStore, teacher: HuggingFaceTeacher, texts: list[str], idx: object) -> np.ndarray:
    """The teacher's outputs for rows ``idx``, from the label store (the teacher runs only for rows not stored)."""
    return store.get(np.asarray(idx), teacher, texts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--layers", default="0,5")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = teacher_dir(tmp)
        model, tok = load_task_model(path, "sentence-embedding")
        teacher = HuggingFaceTeacher(model, tok, 128, path)
        texts = python_docs_corpus()[: args.texts]
        student = select_layers(model, [int(i) for i in args.layers.split(",")])
        steps = len(texts) // args.batch
        cfg = DistillConfig(steps=steps, batch_size=args.batch, checkpoint_every=10**6,
                            losses=[LossSpec(name="embedding_mse"), LossSpec(name="embedding_cosine")])
        times = []
        for epoch in range(2):
            store = LabelStore(tmp / "cache", "bench", len(texts), args.batch)  # reopened: a later run
            start = time.perf_counter()
            train(student, tok, texts, functools.partial(stored_rows, store, teacher, texts), cfg, tmp / f"work{epoch}")
            times.append(time.perf_counter() - start)
        print(f"teacher {path.name if path.name != 'model' else 'all-MiniLM-L6-v2'}, student layers {args.layers}, "
              f"{len(texts)} texts, batch {args.batch}, {args.threads} threads")
        print(f"epoch 1 (teacher labels into the cache + training): {times[0]:.2f} s")
        print(f"epoch 2 (cache, memory-mapped + training):           {times[1]:.2f} s")
        print(f"ratio: {times[1] / times[0]:.3f} (target <= 0.55)")


if __name__ == "__main__":
    main()
