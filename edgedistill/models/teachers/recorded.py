"""Recorded teacher outputs: distil from a log (JSONL, NPZ or Parquet) of a teacher you cannot run.

Each record pairs an input text with the output vector. Asking for a text the log lacks is an error naming
how many are missing and one example, so a log that does not match the dataset is caught before training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import sha256_path
from edgedistill.errors import InputError, MissingDependencyError
from edgedistill.models.teachers.base import Teacher


def read_jsonl(path: Path, input_key: str, output_key: str) -> tuple[list[str], np.ndarray]:
    texts, vectors = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            texts.append(str(row[input_key]))
            vectors.append(np.asarray(row[output_key], dtype=np.float32))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}:{n}: expected JSON with '{input_key}' and '{output_key}' ({err})") from None
    return texts, stack(vectors, path)


def read_npz(path: Path, input_key: str, output_key: str) -> tuple[list[str], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        if input_key not in data or output_key not in data:
            raise InputError(f"{path}: needs arrays '{input_key}' and '{output_key}', has {sorted(data.files)}")
        return [str(t) for t in data[input_key]], np.asarray(data[output_key], dtype=np.float32)


def read_parquet(path: Path, input_key: str, output_key: str) -> tuple[list[str], np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("recorded outputs in Parquet need pyarrow: pip install pyarrow") from None
    table = pq.read_table(path, columns=[input_key, output_key])
    vectors = [np.asarray(v, dtype=np.float32) for v in table.column(output_key).to_pylist()]
    return [str(t) for t in table.column(input_key).to_pylist()], stack(vectors, path)


def stack(vectors: list[np.ndarray], path: Path) -> np.ndarray:
    sizes = {v.shape for v in vectors}
    if len(sizes) != 1:
        raise InputError(f"{path}: output vectors differ in shape: {sorted(sizes)[:3]}")
    return np.stack(vectors)


READERS = {".jsonl": read_jsonl, ".npz": read_npz, ".parquet": read_parquet}


class RecordedTeacher(Teacher):
    name = "recorded"

    def __init__(self, path: Path, input_key: str = "input", output_key: str = "output"):
        reader = READERS.get(path.suffix)
        if reader is None:
            raise InputError(f"recorded outputs {path}: unknown format; expected one of {sorted(READERS)}")
        texts, self.vectors = reader(path, input_key, output_key)
        self.index = {t: i for i, t in enumerate(texts)}
        self.path = path

    def identity(self) -> dict[str, Any]:
        return {"source": "recorded", "file": sha256_path(self.path)}

    def check_covers(self, texts: list[str]) -> None:
        """Raise InputError unless every text has a recorded output."""
        missing = [t for t in texts if t not in self.index]
        if missing:
            raise InputError(f"recorded outputs {self.path} do not match the dataset: {len(missing)} of "
                             f"{len(texts)} inputs have no record, e.g. {missing[0][:60]!r}")

    def run(self, texts: list[str]) -> np.ndarray:
        self.check_covers(texts)
        return self.vectors[[self.index[t] for t in texts]]
