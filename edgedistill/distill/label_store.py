"""A resumable, memory-mapped store of teacher outputs, keyed by (teacher, dataset, preprocessing).

Layout of ``cache_dir/teacher-{key}/``::

    meta.json          count, chunk size, key inputs (never secrets)
    chunks/000012.npy  outputs of rows [12·chunk, 13·chunk), each written atomically (temp file + rename)
    index.json         the chunks done, rewritten atomically after each chunk (for people; files are the truth)
    outputs.npy        all rows once complete, read memory-mapped; the chunks are then removed

A chunk file exists only once complete, so a labelling job killed at any moment resumes with the missing
chunks only: nothing answered and stored is requested again, and no partial entry is ever read. Chunks are
renamed into place without fsync (a killed process loses nothing the kernel has; fsync per chunk capped HTTP
labelling at ~100 chunks/s here); every chunk is checked when read, so one damaged by a power cut is relabelled.
Every row has one width, that of the first chunk stored: a teacher answer of another width is refused, never
stored; in a store written before this was checked, the chunks of a width other than most chunks' are relabelled.
``refresh=True`` (``--force``) starts the store over.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import atomic_write_bytes, atomic_write_json, read_json, sha256_json, umask_mode
from edgedistill.errors import InputError
from edgedistill.models.teachers.base import Teacher

OUTPUTS = "outputs.npy"


def store_key(identity: dict[str, Any], texts_hash: str, preprocessing: dict[str, Any]) -> str:
    return sha256_json({"teacher": identity, "texts": texts_hash, "preprocessing": preprocessing})[:16]


def rename_into_place(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder and an atomic rename (no fsync; see the module doc)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())  # mkstemp's 0600 is too private for a cache others may read
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


class LabelStore:
    """Teacher outputs for ``count`` rows, labelled in chunks of ``chunk_size`` rows."""

    def __init__(self, cache_dir: Path, key: str, count: int, chunk_size: int, meta: dict[str, Any] | None = None,
                 refresh: bool = False):
        self.root = cache_dir / f"teacher-{key}"
        self.count, self.chunk_size = count, chunk_size
        self.chunks: dict[int, np.ndarray] = {}
        self.full: np.ndarray | None = None
        self.width: tuple[int, ...] | None = None  # the shape of one row, from the first chunk read or written
        meta_path = self.root / "meta.json"
        expected = {"count": count, "chunk_size": chunk_size, "key": key, **(meta or {})}
        if refresh or (meta_path.is_file() and read_json(meta_path) != expected):
            shutil.rmtree(self.root, ignore_errors=True)  # asked to, or another layout under the key: never mix
        if not meta_path.is_file():
            atomic_write_json(meta_path, expected)
        if (self.root / OUTPUTS).is_file():
            self.full = np.load(self.root / OUTPUTS, mmap_mode="r")

    @property
    def n_chunks(self) -> int:
        return -(-self.count // self.chunk_size)

    def chunk_path(self, c: int) -> Path:
        return self.root / "chunks" / f"{c:06d}.npy"

    def rows(self, c: int) -> range:
        return range(c * self.chunk_size, min((c + 1) * self.chunk_size, self.count))

    def read_chunk(self, c: int) -> np.ndarray | None:
        """A stored chunk (memory-mapped), or None if absent or not the right size (then it is relabelled)."""
        if c in self.chunks:
            return self.chunks[c]
        path = self.chunk_path(c)
        if not path.is_file():
            return None
        try:
            array = np.load(path, mmap_mode="r")
        except (ValueError, OSError):
            array = None
        if array is None or array.shape[0] != len(self.rows(c)) or self.width not in (None, array.shape[1:]):
            path.unlink()
            return None
        self.width = array.shape[1:]
        self.chunks[c] = array
        return array

    def stored_width(self) -> tuple[int, ...] | None:
        """The row shape most stored chunks have (None before the first chunk)."""
        shapes: Counter[tuple[int, ...]] = Counter()
        for path in (self.root / "chunks").glob("*.npy"):
            with contextlib.suppress(ValueError, OSError):
                shapes[np.load(path, mmap_mode="r").shape[1:]] += 1
        return shapes.most_common(1)[0][0] if shapes else None

    def missing(self, chunks: list[int] | None = None) -> list[int]:
        if self.full is not None:
            return []
        if self.width is None:
            self.width = self.stored_width()
        return [c for c in (range(self.n_chunks) if chunks is None else chunks) if self.read_chunk(c) is None]

    def write_chunk(self, c: int, outputs: np.ndarray) -> None:
        if outputs.shape[0] != len(self.rows(c)) or not np.isfinite(outputs).all():
            raise InputError(f"teacher returned {outputs.shape[0]} rows (or non-finite values) for a batch of "
                             f"{len(self.rows(c))}; nothing was stored for it")
        if self.width is None:
            self.width = self.stored_width()
        if self.width not in (None, outputs.shape[1:]):
            raise InputError(f"teacher returned outputs of width {'x'.join(map(str, outputs.shape[1:]))} where "
                             f"every stored one has width {'x'.join(map(str, self.width))}; nothing was stored "
                             "for it (a misconfigured or changed teacher: check it, then re-run with --force)")
        self.width = outputs.shape[1:]
        rename_into_place(self.chunk_path(c), npy_bytes(outputs))
        self.chunks[c] = outputs.astype(np.float32)
        index = {"done": sorted(self.chunks), "of": self.n_chunks}
        rename_into_place(self.root / "index.json", json.dumps(index).encode())

    def fill(self, teacher: Teacher, texts: list[str], chunks: list[int] | None = None,
             progress: Callable[[int], None] | None = None) -> None:
        """Label the missing chunks (all, or those listed), storing each as soon as it is answered."""
        todo = self.missing(chunks)
        batches = [[texts[i] for i in self.rows(c)] for c in todo]
        for j, outputs in teacher.label(batches):
            self.write_chunk(todo[j], outputs)
            if progress is not None:
                progress(len(batches[j]))

    def consolidate(self) -> np.ndarray:
        """All rows as one memory-mapped array (written once, atomically, when every chunk is stored)."""
        if self.full is None:
            assert not self.missing(), "consolidate() before every chunk is stored"
            atomic_write_bytes(self.root / OUTPUTS, npy_bytes(np.concatenate([self.chunks[c] for c in
                                                                               range(self.n_chunks)])))
            shutil.rmtree(self.root / "chunks", ignore_errors=True)
            self.chunks.clear()
            self.full = np.load(self.root / OUTPUTS, mmap_mode="r")
        return self.full

    def get(self, idx: np.ndarray, teacher: Teacher | None = None, texts: list[str] | None = None) -> np.ndarray:
        """Rows ``idx``; chunks not yet stored are labelled first (needs ``teacher`` and ``texts``)."""
        if self.full is not None:
            return np.asarray(self.full[idx])
        needed = sorted({int(i) // self.chunk_size for i in idx})
        if self.missing(needed):
            if teacher is None or texts is None:
                raise InputError(f"teacher outputs for {len(self.missing(needed))} chunks are not cached")
            self.fill(teacher, texts, needed)
        return np.stack([self.chunks[int(i) // self.chunk_size][int(i) % self.chunk_size] for i in idx])

    def label_all(self, teacher: Teacher, texts: list[str], progress: Callable[[int], None] | None = None
                  ) -> np.ndarray:
        """Every row, labelling what is missing; the result is memory-mapped from disk."""
        self.fill(teacher, texts, progress=progress)
        return self.consolidate()
